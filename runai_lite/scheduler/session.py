"""A scheduling session: the working state plus the plan being written.

Actions decide *what* to do and hand an `Option` to `Session.commit`, which is the only place that
changes the state and writes plan actions, so every decision is recorded the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from ..gpu.catalog import MigProfile
from ..gpu.mig_layout import free_runs
from ..model import (
    MILLI,
    Allocation,
    AllocationKind,
    Bind,
    CreateMig,
    DestroyMig,
    Job,
    Plan,
    Preempt,
    RequestKind,
    Reserve,
    Snapshot,
)
from ..units import format_bytes
from .mig_choice import MigTarget, targets
from .placement import make_policy
from .quota import fmt_gpus
from .shared_gpus import SharedGpus, workload_of
from .state import ClusterState, GpuState, Instance, NodeState, mig_share_milli


class PlacementKind(StrEnum):
    """How an option runs a job: whole GPUs, a share of one GPU, a MIG partition, or no GPU at all
    (bound as an `AllocationKind.GPU` allocation without GPU indices)."""

    GPU = "gpu"
    FRACTION = "fraction"
    MIG = "mig"
    CPU = "cpu"


@dataclass(frozen=True, slots=True)
class Option:
    """One concrete way to run a job, with everything it disrupts."""

    kind: PlacementKind
    node: NodeState
    gpus: tuple[GpuState, ...]
    charge: Fraction
    share_milli: int = MILLI
    memory_mib: int | None = None
    mig: MigTarget | None = None
    victims: tuple[str, ...] = ()
    how: str = ""  # how it was chosen, for the Bind reason


@dataclass
class Session:
    snapshot: Snapshot
    state: ClusterState = field(init=False)
    shared: SharedGpus = field(init=False)
    preempts: list[Preempt] = field(default_factory=list)
    destroys: list[DestroyMig] = field(default_factory=list)
    creates: list[CreateMig] = field(default_factory=list)
    reserves: list[Reserve] = field(default_factory=list)
    binds: list[Bind] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    generation: int = 0  # bumped whenever room is released or more work becomes reclaimable

    def __post_init__(self) -> None:
        self.state = ClusterState(self.snapshot)
        self.shared = SharedGpus(self.state)
        self._mig_cache: dict[tuple, list] = {}
        self._best_cache: dict[tuple, tuple | None] = {}
        self.candidates: dict[tuple, tuple[MigProfile, ...]] = {}  # (request, model) -> MIG profiles
        self._run_cache: dict[tuple, int] = {}
        self.policy = make_policy(self.snapshot.policy, workload=workload_of(self.snapshot.jobs))

    def job(self, job_id: str) -> Job:
        return self.state.jobs[job_id]

    # ------------------------------------------------------------------ MIG choices, by layout

    def mig_places(self, gpu: GpuState, profile: MigProfile) -> list[tuple]:
        """`mig_choice.targets` without victims as (start, reused start, destroyed (start, profile)s,
        fragmentation, packing), computed once per layout signature and profile."""
        key = (gpu.signature(), profile.name)
        found = self._mig_cache.get(key)
        if found is None:
            found = [(t.start, t.reuse.start if t.reuse else None, tuple(_where(i) for i in t.destroy),
                      t.fragmentation, t.packing) for t in targets(gpu, profile, destroy_idle=True)]
            self._mig_cache[key] = found
        return found

    def best_mig_place(self, gpu: GpuState, ranked: tuple[tuple[int, MigProfile], ...]) -> tuple | None:
        """The best (key, profile, target, undisturbed) on `gpu` among `ranked` profiles without victims,
        where `undisturbed` says whether some place here needs no instance destroyed: the same for every
        GPU of its layout, so computed once per signature. The key is what `allocate` compares."""
        cache_key = (gpu.signature(), ranked)
        if cache_key not in self._best_cache:
            best = None
            undisturbed = False
            for rank, profile in ranked:
                for start, reuse, destroy, fragmentation, packing in self.mig_places(gpu, profile):
                    undisturbed = undisturbed or not destroy
                    # Idle slices count as nearly free: destroying idle instances only breaks ties
                    # after packing, so work does not scatter onto empty GPUs (allocate's docstring).
                    key = (rank, reuse is None, *packing, len(destroy), tuple(-x for x in fragmentation))
                    if best is None or (key, start) < (best[0], best[2][0]):
                        best = (key, profile, (start, reuse, destroy, fragmentation))
            self._best_cache[cache_key] = None if best is None else (*best, undisturbed)
        found = self._best_cache[cache_key]
        if found is None:
            return None
        key, profile, (start, reuse, destroy, fragmentation), undisturbed = found
        target = MigTarget(profile, start, None if reuse is None else gpu.instance_at(reuse),
                           tuple(i for i in gpu.instances if _where(i) in destroy), (), (), fragmentation)
        return key, profile, target, undisturbed

    def mig_largest_free_run(self, gpu: GpuState) -> int:
        key = gpu.signature()
        if key not in self._run_cache:
            assert gpu.model is not None
            self._run_cache[key] = max(free_runs(gpu.model, gpu.layout()), default=0)
        return self._run_cache[key]

    def hold(self, job_id: str, allocation: Allocation) -> None:
        project = self.job(job_id).project
        self.state.hold(job_id, allocation)
        self.shared.hold(self.job(job_id), allocation)
        if self.state.over_quota(project):
            self.generation += 1  # more of its running work may be reclaimed now

    def release(self, job_id: str) -> Allocation:
        allocation = self.state.release(job_id)
        self.shared.release(self.job(job_id), allocation)
        self.generation += 1
        return allocation

    # ------------------------------------------------------------------------------------ commit

    def commit(self, job: Job, option: Option) -> None:
        owners = {id(i): i.job for i in option.mig.destroy} if option.mig else {}
        for victim_id in option.victims:
            self._preempt(job, option, victim_id)
        gpu = option.gpus[0] if option.gpus else None
        if option.kind is PlacementKind.MIG:
            assert gpu is not None and option.mig is not None
            allocation = self._mig(job, gpu, option.mig, option.node, owners)
        else:
            if option.kind is PlacementKind.FRACTION and gpu is not None and gpu.fraction_holders == 0:
                self.reserves.append(Reserve(node=option.node.name, gpu_index=gpu.index,
                                             reason=f"{gpu.label} becomes shared by fractions (first: {job.name})"))
            allocation = Allocation(
                kind=AllocationKind.FRACTION if option.kind is PlacementKind.FRACTION else AllocationKind.GPU,
                node=option.node.name,
                gpu_indices=tuple(g.index for g in option.gpus),
                gpu_uuids=tuple(g.uuid for g in option.gpus),
                share_milli=option.share_milli,
                memory_mib=option.memory_mib,
            )
        self.hold(job.id, allocation)
        self.binds.append(Bind(job=job.id, allocation=allocation, reason=self._bind_reason(job, option)))

    def _preempt(self, job: Job, option: Option, victim_id: str) -> None:
        victim = self.job(victim_id)
        where = option.gpus[0].label if option.gpus else option.node.name
        if victim.project == job.project:
            reason = (f"preempted by {job.type.display.lower()} job {job.name} (priority {job.priority} > "
                      f"{victim.priority}), which needs its resources on {where}")
        else:
            deserved = self.state.deserved_of(victim.project)
            reason = (f"reclaimed for job {job.name} of project {job.project}, which is within its quota; "
                      f"project {victim.project} is over its deserved {fmt_gpus(deserved)} GPUs")
        self.preempts.append(Preempt(job=victim_id, reason=reason))
        self.release(victim_id)

    def _mig(self, job: Job, gpu: GpuState, target: MigTarget, node: NodeState,
             owners: dict[int, str | None]) -> Allocation:
        assert gpu.model is not None
        profile = target.profile
        for inst in target.destroy:
            owner = owners.get(id(inst))
            why = (f"idle; its slices are needed for a {profile.name} for job {job.name}" if owner is None
                   else f"partition of preempted job {self.job(owner).name}; its slices are needed for a "
                        f"{profile.name} for job {job.name}")
            self.destroys.append(DestroyMig(node=node.name, gpu_index=gpu.index, profile=inst.profile.name,
                                            start=inst.start, uuid=inst.uuid, reason=why))
            self.state.destroy(gpu, inst)
        uuid = None
        if target.reuse is not None:
            uuid = target.reuse.uuid
        else:
            self.creates.append(CreateMig(node=node.name, gpu_index=gpu.index, profile=profile.name,
                                          start=target.start, for_job=job.id,
                                          reason=f"{profile.name} at slice {target.start} of {gpu.label} "
                                                 f"for job {job.name} ({_asked(job)})"))
            self.state.create(gpu, profile, target.start)
        return Allocation(
            kind=AllocationKind.MIG, node=node.name, gpu_indices=(gpu.index,), gpu_uuids=(gpu.uuid,),
            share_milli=mig_share_milli(gpu.model, profile), memory_mib=profile.memory_mib,
            mig_profile=profile.name, mig_start=target.start, mig_size=profile.memory_slices, mig_uuid=uuid,
        )

    def _bind_reason(self, job: Job, option: Option) -> str:
        where = option.gpus[0].label if len(option.gpus) == 1 else option.node.name
        if option.kind is PlacementKind.MIG:
            assert option.mig is not None
            done = "existing idle instance" if option.mig.reuse is not None and not option.victims else (
                "instance of the preempted job" if option.mig.reuse is not None else "new instance")
            what = f"{option.mig.profile.name} at slice {option.mig.start} on {where} ({done})"
        elif option.kind is PlacementKind.FRACTION:
            what = f"{fmt_gpus(Fraction(option.share_milli, MILLI))} of {where} ({option.memory_mib}MiB)"
        elif option.kind is PlacementKind.GPU:
            count = len(option.gpus)
            what = f"{count} whole GPU{'s' if count > 1 else ''} on {option.node.name} " \
                   f"(GPU {', '.join(str(g.index) for g in option.gpus)})"
        else:
            what = f"node {option.node.name} (no GPU)"
        suffix = f" after preempting {', '.join(self.job(v).name for v in option.victims)}" if option.victims else ""
        how = f", {option.how}" if option.how else ""
        return f"{_asked(job)} → {what}{how}{suffix}"

    # ------------------------------------------------------------------------------------ result

    def result(self) -> Plan:
        actions = [*self.preempts, *self.destroys, *self.creates, *self.reserves, *self.binds]
        pending = tuple(sorted(self.pending.items()))
        return Plan(actions=tuple(actions), pending=pending)


def _where(inst: Instance) -> tuple[int, str]:
    """An instance as GPUs of one layout signature share it (even an inconsistent layout with two
    instances at one start)."""
    return inst.start, inst.profile.name


def _asked(job: Job) -> str:
    request = job.request
    if request is None:
        return "no GPU"
    if request.kind == RequestKind.GPUS:
        return f"--gpu {request.gpus}"
    if request.kind == RequestKind.FRACTION:
        return f"--gpu {request.fraction:g}"
    if request.kind == RequestKind.MEMORY:
        assert request.memory_bytes is not None
        return f"--gpu-memory {format_bytes(request.memory_bytes)}"
    return f"--mig-profile {request.mig_profile}"
