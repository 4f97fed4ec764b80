"""A scheduling session: the working state, the plan being written, and trials.

Actions decide *what* to do and hand an `Option` to `Session.commit`, the only place that changes
the state for good and records plan actions (in `plan`, a `PlanRecorder`), so every decision is
recorded the same way. `trial()` opens a `Trial`: holds and releases made through it are undone
when it closes unless committed (KAI-Scheduler's Statement). `mig` caches MIG choices per layout;
`generation` counts the changes that can make a job that found no room placeable (room released,
a project going over its quota).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import NamedTuple

from ..model import MILLI, Allocation, AllocationKind, Bind, CreateMig, DestroyMig, Job, Preempt, Reserve, Snapshot
from .mig_cache import MigChoices
from .mig_choice import MigTarget
from .placement import PlacementPolicy, make_policy
from .recorder import (
    PlanRecorder,
    bind_reason,
    create_reason,
    destroy_reason,
    fraction_what,
    mig_what,
    preempt_reason,
    reserve_reason,
    whole_what,
)
from .shared_gpus import SharedGpus, workload_of
from .state import ClusterState, GpuState, NodeState, mig_share_milli


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
    """Built from the snapshot, or over a working state carried from earlier plans (`carried.py`),
    which must be what `ClusterState(snapshot)` and `SharedGpus` would build, with the policy
    and MIG caches of the same workload."""

    snapshot: Snapshot
    state: ClusterState = None  # type: ignore[assignment]
    shared: SharedGpus = None  # type: ignore[assignment]
    policy: PlacementPolicy = None  # type: ignore[assignment]
    plan: PlanRecorder = field(default_factory=PlanRecorder)
    mig: MigChoices = field(default_factory=MigChoices)
    generation: int = 0  # bumped whenever room is released or more work becomes reclaimable

    def __post_init__(self) -> None:
        if self.state is None:
            self.state = ClusterState(self.snapshot)
            self.shared = SharedGpus(self.state)
        if self.policy is None:
            self.policy = make_policy(self.snapshot.policy, workload=workload_of(self.snapshot.jobs))

    def job(self, job_id: str) -> Job:
        return self.state.jobs[job_id]

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

    @contextmanager
    def trial(self) -> Iterator[Trial]:
        """A `Trial` of changes, rolled back when the block ends unless committed."""
        trial = Trial(self)
        try:
            yield trial
        finally:
            trial.rollback()

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
                self.plan.record(Reserve(node=option.node.name, gpu_index=gpu.index,
                                         reason=reserve_reason(job, gpu.label)))
            allocation = Allocation(
                kind=AllocationKind.FRACTION if option.kind is PlacementKind.FRACTION else AllocationKind.GPU,
                node=option.node.name,
                gpu_indices=tuple(g.index for g in option.gpus),
                gpu_uuids=tuple(g.uuid for g in option.gpus),
                share_milli=option.share_milli,
                memory_mib=option.memory_mib,
            )
        self.hold(job.id, allocation)
        self.plan.record(Bind(job=job.id, allocation=allocation, reason=self._bind_reason(job, option)))

    def _preempt(self, job: Job, option: Option, victim_id: str) -> None:
        victim = self.job(victim_id)
        where = option.gpus[0].label if option.gpus else option.node.name
        reason = preempt_reason(job, victim, where, self.state.deserved_of(victim.project))
        self.plan.record(Preempt(job=victim_id, reason=reason))
        self.release(victim_id)

    def _mig(self, job: Job, gpu: GpuState, target: MigTarget, node: NodeState,
             owners: dict[int, str | None]) -> Allocation:
        assert gpu.model is not None
        profile = target.profile
        for inst in target.destroy:
            owner = owners.get(id(inst))
            why = destroy_reason(job, profile.name, None if owner is None else self.job(owner))
            self.plan.record(DestroyMig(node=node.name, gpu_index=gpu.index, profile=inst.profile.name,
                                        start=inst.start, uuid=inst.uuid, reason=why))
            self.state.destroy(gpu, inst)
        uuid = None
        if target.reuse is not None:
            uuid = target.reuse.uuid
        else:
            self.plan.record(CreateMig(node=node.name, gpu_index=gpu.index, profile=profile.name,
                                       start=target.start, for_job=job.id,
                                       reason=create_reason(job, profile.name, target.start, gpu.label)))
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
            what = mig_what(option.mig.profile.name, option.mig.start, where, option.mig.reuse is not None,
                            bool(option.victims))
        elif option.kind is PlacementKind.FRACTION:
            what = fraction_what(option.share_milli, where, option.memory_mib)
        elif option.kind is PlacementKind.GPU:
            what = whole_what(option.node.name, [g.index for g in option.gpus])
        else:
            what = f"node {option.node.name} (no GPU)"
        return bind_reason(job, what, option.how, [self.job(v).name for v in option.victims])


class Checkpoint(NamedTuple):
    changes: int  # holds and releases made before it
    generation: int


class Trial:
    """Holds and releases made to try something out (KAI-Scheduler's Statement): `rollback()` undoes
    them in reverse order and puts the generation back, as if nothing had changed; `commit()` keeps
    them. `checkpoint()` marks a point to roll back to."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._undo: list[Callable[[], object]] = []
        self._start = self.checkpoint()

    def hold(self, job_id: str, allocation: Allocation) -> None:
        self.session.hold(job_id, allocation)
        self._undo.append(lambda: self.session.release(job_id))

    def release(self, job_id: str) -> Allocation:
        allocation = self.session.release(job_id)
        self._undo.append(lambda: self.session.hold(job_id, allocation))
        return allocation

    def checkpoint(self) -> Checkpoint:
        return Checkpoint(len(self._undo), self.session.generation)

    def rollback(self, to: Checkpoint | None = None) -> None:
        """Undo what was done since `to` (by default, since the trial began or was last committed)."""
        to = to or self._start
        while len(self._undo) > to.changes:
            self._undo.pop()()
        self.session.generation = to.generation

    def commit(self) -> None:
        self._undo.clear()
        self._start = self.checkpoint()
