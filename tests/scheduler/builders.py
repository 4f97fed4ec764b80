"""A small vocabulary for writing scheduler scenarios as stories: nodes, GPUs, jobs in; a plan out,
summarised in one line per action so expectations read like the story they tell."""

from __future__ import annotations

from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import (
    Allocation,
    Bind,
    CreateMig,
    DestroyMig,
    Gpu,
    Job,
    JobStatus,
    JobType,
    MigInstance,
    Node,
    Plan,
    Preempt,
    Project,
    Reserve,
    Snapshot,
)

MEMORY = {"A100-SXM4-40GB": 40536, "A30": 24576, "H100-SXM5-80GB": 81559, "V100-SXM2-16GB": 16160, "T4": 15360}


def gpu(index: int = 0, model: str = "V100-SXM2-16GB", *, mig: bool = False, memory_mib: int | None = None,
        idle: tuple[tuple[str, int], ...] = ()) -> Gpu:
    """A GPU; `mig=True` marks it dynamic-MIG; `idle` lists (profile, start) instances no job uses."""
    model_info = default_catalog().find(model)
    instances = tuple(
        MigInstance(profile=p, start=s, size=model_info.profile(p).memory_slices, uuid=f"MIG-{model}-{index}-{s}")
        for p, s in idle
    ) if model_info else ()
    return Gpu(index=index, uuid=f"GPU-{model}-{index}", model=model,
               memory_mib=memory_mib or MEMORY.get(model, model_info.memory_mib if model_info else 16000),
               dynamic_mig=mig, mig_enabled=mig, mig_instances=instances)


def a100(index: int = 0, *, idle: tuple[tuple[str, int], ...] = ()) -> Gpu:
    return gpu(index, "A100-SXM4-40GB", mig=True, idle=idle)


def node(name: str, *gpus: Gpu, cpu_milli: int | None = None, memory_mib: int | None = None,
         schedulable: bool = True) -> Node:
    return Node(name=name, gpus=gpus, cpu_milli=cpu_milli, memory_mib=memory_mib, schedulable=schedulable)


_TYPES = {"train": JobType.TRAIN, "interactive": JobType.INTERACTIVE, "preemptible": JobType.INTERACTIVE_PREEMPTIBLE}


def job(name: str, *, project: str = "team-a", type: str = "train", gpu: str | None = None,
        gpu_memory: str | None = None, mig_profile: str | None = None, at: float = 0.0,
        cpu_milli: int = 0, memory_mib: int = 0, gpu_models: tuple[str, ...] = ()) -> Job:
    """A pending job submitted at time `at`, asking as `runai submit` flags would."""
    request = request_from_flags(gpu=gpu, gpu_memory=gpu_memory, mig_profile=mig_profile)
    return Job(id=name, name=name, project=project, type=_TYPES[type], request=request, submitted_at=at,
               cpu_milli=cpu_milli, memory_mib=memory_mib, gpu_models=gpu_models)


def running(pending: Job, allocation: Allocation, *, started: float | None = None,
            status: JobStatus = JobStatus.RUNNING) -> Job:
    return pending.model_copy(update={"status": status, "allocation": allocation,
                                      "started_at": pending.submitted_at if started is None else started})


def on_mig(node_name: str, gpu_index: int, profile: str, start: int, model: str = "A100-SXM4-40GB") -> Allocation:
    info = default_catalog().get(model).profile(profile)
    return Allocation(kind="mig", node=node_name, gpu_indices=(gpu_index,), gpu_uuids=(f"GPU-{model}-{gpu_index}",),
                      share_milli=max(1, round(1000 * info.compute / default_catalog().get(model).compute_slices)),
                      memory_mib=info.memory_mib, mig_profile=profile, mig_start=start,
                      mig_size=info.memory_slices, mig_uuid=f"MIG-{model}-{gpu_index}-{start}")


def on_share(node_name: str, gpu_index: int, share: float) -> Allocation:
    return Allocation(kind="fraction", node=node_name, gpu_indices=(gpu_index,), share_milli=round(share * 1000))


def on_gpus(node_name: str, *indices: int) -> Allocation:
    return Allocation(kind="gpu", node=node_name, gpu_indices=indices)


def cluster(nodes: list[Node], jobs: list[Job], quotas: dict[str, float] | None = None,
            policy: str = "default") -> Snapshot:
    """A snapshot; MIG instances used by running jobs are added to their GPUs."""
    used: dict[tuple[str, int], list[MigInstance]] = {}
    for j in jobs:
        a = j.allocation
        if j.status.holds_resources and a is not None and a.kind == "mig":
            used.setdefault((a.node, a.gpu_indices[0]), []).append(
                MigInstance(profile=a.mig_profile, start=a.mig_start, size=a.mig_size, uuid=a.mig_uuid, job=j.id))
    built = []
    for n in nodes:
        gpus = tuple(g.model_copy(update={"mig_instances": tuple(sorted(
            (*g.mig_instances, *used.get((n.name, g.index), ())), key=lambda i: i.start))}) for g in n.gpus)
        built.append(n.model_copy(update={"gpus": gpus}))
    projects = tuple(Project(name=p, deserved_gpus=d) for p, d in (quotas or {"team-a": 2}).items())
    return Snapshot(nodes=tuple(built), jobs=tuple(jobs), projects=projects, policy=policy)


def describe(plan: Plan) -> dict:
    """The plan as short lines: `preempt mig3`, `destroy node-1/0 2g.10gb@0`, `bind mig1 node-1/0 1g.10gb@6`."""
    lines: dict[str, list[str]] = {"preempt": [], "destroy": [], "create": [], "reserve": [], "bind": []}
    for action in plan.actions:
        if isinstance(action, Preempt):
            lines["preempt"].append(action.job)
        elif isinstance(action, DestroyMig):
            lines["destroy"].append(f"{action.node}/{action.gpu_index} {action.profile}@{action.start}")
        elif isinstance(action, CreateMig):
            lines["create"].append(f"{action.node}/{action.gpu_index} {action.profile}@{action.start}")
        elif isinstance(action, Reserve):
            lines["reserve"].append(f"{action.node}/{action.gpu_index}")
        elif isinstance(action, Bind):
            lines["bind"].append(f"{action.job} {where(action.allocation)}")
    return lines


def where(a: Allocation) -> str:
    gpus = ",".join(str(i) for i in a.gpu_indices)
    place = f"{a.node}/{gpus}" if gpus else a.node
    if a.kind == "mig":
        return f"{place} {a.mig_profile}@{a.mig_start}"
    if a.kind == "fraction":
        return f"{place} {a.share_milli / 1000:g}"
    return place
