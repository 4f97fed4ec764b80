"""Why a job stays pending, in words a researcher can act on.

Written against the state at the end of the plan (after every placement), so the figures quoted
("largest free share: 0.5 on node-1 GPU 1") are what the cluster will look like.
"""

from __future__ import annotations

from fractions import Fraction

from ..gpu.requests import is_plain_profile, mig_candidates
from ..model import MILLI, MIN_GPU_MEMORY_BYTES, GpuRequest, Job, RequestKind
from ..units import MiB, format_bytes, format_mib
from .quota import fmt_gpus, gpus_text
from .session import Session
from .shared_gpus import demand_of
from .state import GpuState, canonical_model_name


def waiting_reason(session: Session, stopping: list[str]) -> str:
    names = [session.job(j).name for j in stopping]
    plural = "s" if len(names) > 1 else ""
    return f"waiting for preempted job{plural} {', '.join(names)} to stop"


def _host_room(nodes: list, job: Job) -> str:
    """No node has the CPU or memory the job asks for free: say which, and the most free there is."""
    wanted, most = [], []
    if job.cpu_milli and any(n.cpu_free is not None and n.cpu_free < job.cpu_milli for n in nodes):
        best = max((n for n in nodes if n.cpu_free is not None), key=lambda n: (n.cpu_free, n.name))
        wanted.append(f"{job.cpu_milli / 1000:g} CPU cores")
        most.append(f"{max(best.cpu_free, 0) / 1000:g} cores on {best.name}")
    if job.memory_mib and any(n.memory_free is not None and n.memory_free < job.memory_mib for n in nodes):
        best = max((n for n in nodes if n.memory_free is not None), key=lambda n: (n.memory_free, n.name))
        wanted.append(f"{format_mib(job.memory_mib)} of host memory")
        most.append(f"{format_mib(max(best.memory_free, 0))} on {best.name}")
    return f"no schedulable node has {' and '.join(wanted)} free (most free: {', '.join(most)})"


def capacity_reason(session: Session, job: Job) -> str:
    """No room for the job anywhere, even by preempting what it may preempt."""
    nodes = [n for n in session.state.nodes.values() if n.schedulable]
    if not nodes:
        return "no schedulable node in the cluster"
    nodes = [n for n in nodes if job.may_run_on(n.name)]
    if not nodes:
        return "no node passes the job's node filters"
    request = job.request
    if not any(n.host_fits(job.cpu_milli, job.memory_mib) for n in nodes):
        return _host_room(nodes, job)
    if request is None:
        return "no schedulable node can run it"  # host room exists, so only a node filter could be in the way
    allowed = {canonical_model_name(m) for m in job.gpu_models}
    gpus = [g for n in nodes for g in n.gpus.values() if not allowed or g.model_name in allowed]
    if not gpus:
        only = f" of model {', '.join(sorted(allowed))}" if allowed else ""
        return f"no schedulable node has a GPU{only}"
    shared = [g for g in gpus if not g.mig_only]
    dynamic = [g for g in gpus if g.mig_usable]
    if not shared and not dynamic:
        return ("every GPU here is in MIG mode but not dynamic-MIG, so it can be neither shared nor "
                "partitioned on demand (an administrator enables it with "
                "`runai-adm set node-role --dynamic-mig-enabled NODE`)")
    static_only = bool(dynamic) and not any(g.dynamic for g in dynamic)
    kind = request.kind
    if kind in (RequestKind.MIG, RequestKind.MEMORY) and static_only and (kind == RequestKind.MIG or not shared):
        text = _static_mig_room(dynamic, job)
    elif kind == RequestKind.MIG:
        text = _mig_room(dynamic, job, request.mig_profile or "")
    elif kind == RequestKind.MEMORY:
        text = _memory_room(session, shared, dynamic, job)
    elif kind == RequestKind.FRACTION:
        text = _fraction_room(shared, dynamic, request.fraction_milli)
    else:
        text = _whole_room(shared, dynamic, request.gpus or 1)
    return text + _quota_note(session, job)


def _static_mig_room(mig_gpus: list[GpuState], job: Job) -> str:
    """MIG GPUs an administrator partitioned by hand serve only the instances they already have."""
    assert job.request is not None
    wanted = sorted({p.name for g in mig_gpus if g.model for p in mig_candidates(job.request, g.model)})
    return (f"no idle {' or '.join(wanted) or 'fitting'} instance on the MIG GPUs here, and they are not "
            "dynamic-MIG, so no partition is created on demand (an administrator enables it with "
            "`runai-adm set node-role --dynamic-mig-enabled NODE`)")


def _mig_room(dynamic: list[GpuState], job: Job, profile: str) -> str:
    if not dynamic:
        return (f"no dynamic-MIG GPU in the cluster; --mig-profile {profile} needs one "
                "(an administrator enables it with `runai-adm set node-role --dynamic-mig-enabled NODE`)")
    offering = [g for g in dynamic if job.request and mig_candidates(job.request, g.model)]  # type: ignore[arg-type]
    if not offering:
        models = sorted({g.model_name for g in dynamic})
        names = sorted({p.name for g in dynamic if g.model for p in g.model.profiles_smallest_first()})
        return (f"no dynamic-MIG GPU offers MIG profile {profile} (models here: {', '.join(models)}; "
                f"their profiles: {', '.join(names)})")
    return f"no dynamic-MIG GPU has room for a {profile}{_most_mig_room(offering)}"


def _most_mig_room(gpus: list[GpuState]) -> str:
    def free(g: GpuState) -> int:
        assert g.model is not None
        return g.model.memory_slices - sum(i.size for i in g.instances if not i.idle)

    best = min(gpus, key=lambda g: (-free(g), g.node, g.index))
    assert best.model is not None
    return f" (most room: {free(best)} of {best.model.memory_slices} memory slices not in use on {best.label})"


def _memory_room(session: Session, shared: list[GpuState], dynamic: list[GpuState], job: Job) -> str:
    assert job.request is not None and job.request.memory_bytes is not None
    size = job.request.describe()  # as it was asked: 10GB, 500Mi
    demand = demand_of(job)
    assert demand is not None
    holding = [g for g in shared if session.shared.share_on(g, demand) <= MILLI]
    offering = [g for g in dynamic if mig_candidates(job.request, g.model)]  # type: ignore[arg-type]
    if not holding and not offering:
        largest = max((g.memory_mib for g in shared + dynamic), default=0)
        return f"no GPU can hold {size} (largest GPU memory: {format_mib(largest)})"
    parts = []
    if holding:
        best = min(holding, key=lambda g: (-g.free_milli * g.memory_mib, g.node, g.index))
        most = best.free_milli * best.memory_mib // MILLI
        parts.append(f"no GPU has {size} free (most free: {format_bytes(most * MiB)} on {best.label})")
    if offering:
        smallest = mig_candidates(job.request, offering[0].model)[0].name  # type: ignore[arg-type]
        parts.append(f"no dynamic-MIG GPU has room for a {smallest}{_most_mig_room(offering)}")
    return "; ".join(parts)


def _fraction_room(shared: list[GpuState], dynamic: list[GpuState], share: int) -> str:
    wanted = fmt_gpus(Fraction(share, MILLI))
    if not shared:
        return f"no GPU here can be shared in fractions: every one is dynamic-MIG{_as_memory(dynamic, share)}"
    best = min(shared, key=lambda g: (-g.free_milli, g.node, g.index))
    largest = fmt_gpus(Fraction(best.free_milli, MILLI))
    return f"no GPU has {wanted} free (largest free share: {largest} on {best.label}){_as_memory(dynamic, share)}"


def _as_memory(dynamic: list[GpuState], share: int) -> str:
    """The partition nearest a `--gpu f` share on a dynamic-MIG GPU: the largest holding no more
    memory than the share would (the smallest, for a sliver), and the flags that ask for it."""
    offering = [g for g in dynamic if g.dynamic and g.model is not None]
    if not offering:
        return ""
    gpu = max(offering, key=lambda g: (g.memory_mib, g.node, g.index))
    assert gpu.model is not None
    memory = gpu.memory_mib * share // MILLI
    plain = [p for p in gpu.model.profiles if is_plain_profile(p)]
    within = [p for p in plain if p.memory_mib <= memory]
    nearest = (max(within, key=lambda p: (p.memory_mib, -p.compute)) if within
               else min(plain, key=lambda p: p.sort_key))
    return (f"; dynamic-MIG GPUs take MIG requests, not --gpu: on {gpu.model_name} GPUs, --gpu-memory "
            f"{format_mib(nearest.memory_mib)} or --mig-profile {nearest.name}")


def _whole_room(shared: list[GpuState], dynamic: list[GpuState], count: int) -> str:
    """Whole GPUs come only from ordinary GPUs; dynamic-MIG GPUs free for a MIG request are counted
    apart, so the figures agree with `runai list nodes` (which counts every GPU nothing runs on)."""
    unit = "GPU" if count == 1 else "GPUs"
    ordinary: dict[str, list[GpuState]] = {}
    for gpu in shared:
        ordinary.setdefault(gpu.node, []).append(gpu)
    mig_free: dict[str, int] = {}
    for gpu in dynamic:
        if gpu.dynamic:
            mig_free[gpu.node] = mig_free.get(gpu.node, 0) + (not any(not i.idle for i in gpu.instances))
    mig_note = _whole_on_mig(dynamic)

    def besides(node: str) -> str:
        return f", besides {mig_free[node]} free dynamic-MIG" if mig_free.get(node) else ""

    if not ordinary:
        counts = ", ".join(f"{free} free on {n}" for n, free in sorted(mig_free.items()))
        return f"no GPU here can be given whole: every one is dynamic-MIG ({counts}){mig_note}"
    biggest = max(ordinary, key=lambda n: (len(ordinary[n]), n))
    if len(ordinary[biggest]) < count:
        return (f"no node has {count} {unit} that can be given whole (most ordinary GPUs on one node: "
                f"{len(ordinary[biggest])} on {biggest}{besides(biggest)}){mig_note}")
    free = {n: sum(1 for g in gs if g.free_milli == MILLI) for n, gs in ordinary.items()}
    most = max(sorted(free), key=lambda n: free[n])
    return f"no node has {count} free whole {unit} (most on one node: {free[most]} free on {most}{besides(most)}){mig_note}"


def _whole_on_mig(dynamic: list[GpuState]) -> str:
    """What the dynamic-MIG GPUs could do for a whole-GPU job: its largest partition."""
    offering = [g for g in dynamic if g.dynamic and g.model is not None]
    if not offering:
        return ""
    gpu = max(offering, key=lambda g: (g.memory_mib, g.node, g.index))
    assert gpu.model is not None
    largest = max((p for p in gpu.model.profiles if is_plain_profile(p)), key=lambda p: p.sort_key)
    return (f"; dynamic-MIG GPUs serve MIG requests only: for one whole {gpu.model_name}, "
            f"ask for --mig-profile {largest.name} or --gpu-memory {format_mib(largest.memory_mib)}")


def _quota_note(session: Session, job: Job) -> str:
    """Said only when it changes what the job may take: a project at its quota takes spare GPUs only."""
    state = session.state
    if state.usage_of(job.project) >= state.deserved_of(job.project):
        return (f"; project {job.project} uses its {gpus_text(state.deserved_of(job.project))} deserved, so it "
                "waits for spare "
                "GPUs instead of reclaiming them from other projects")
    return ""
