"""The pure effect of a plan on a snapshot, as if every action succeeded and every victim stopped.

Victims are requeued (status Pending, no allocation): training work is never lost to a
preemption. Their MIG instances stay, idle, unless the plan destroys them. Created instances have
no UUID until an agent reports one; `Reserve` changes nothing a snapshot records.
"""

from __future__ import annotations

from ..gpu.catalog import default_catalog
from ..model import (
    Bind,
    CreateMig,
    DestroyMig,
    Gpu,
    Job,
    JobStatus,
    MigInstance,
    MigSlot,
    Plan,
    Preempt,
    Reserve,
    Snapshot,
)
from .applier import Outcome, Phase, apply


def apply_plan(snapshot: Snapshot, plan: Plan, *, now: float | None = None) -> Snapshot:
    """`now`, when given, becomes the start time of the jobs bound (the scheduler reads no clock)."""
    simulation = _Simulation(snapshot, now)
    apply(plan, simulation)
    return simulation.snapshot()


class _Simulation:
    """A `PlanApplier` over a copy of the snapshot's jobs and MIG layouts."""

    def __init__(self, snapshot: Snapshot, now: float | None) -> None:
        self.base = snapshot
        self.now = now
        self.jobs = {job.id: job for job in snapshot.jobs}
        self.instances: dict[tuple[str, int], list[MigInstance]] = {
            (node.name, gpu.index): list(gpu.mig_instances) for node in snapshot.nodes for gpu in node.gpus
        }
        self.models = {(node.name, gpu.index): gpu.model for node in snapshot.nodes for gpu in node.gpus}

    def preempt(self, action: Preempt) -> Outcome:
        victim = self.jobs[action.job]
        alloc = victim.allocation
        if alloc is not None and alloc.mig_slot is not None:
            self._set_instance_job(alloc.mig_slot, None, victim.id)
        self.jobs[victim.id] = _requeued(victim)
        return Outcome.APPLIED

    def destroy_mig(self, action: DestroyMig) -> Outcome:
        key = (action.node, action.gpu_index)
        self.instances[key] = [i for i in self.instances.get(key, []) if i.start != action.start]
        return Outcome.APPLIED

    def create_mig(self, action: CreateMig) -> Outcome:
        key = (action.node, action.gpu_index)
        model = default_catalog().find(self.models.get(key, ""))
        profile = model.find_profile(action.profile) if model else None
        size = profile.memory_slices if profile else 1
        self.instances.setdefault(key, []).append(MigInstance(profile=action.profile, start=action.start, size=size))
        return Outcome.APPLIED

    def reserve(self, action: Reserve) -> Outcome:
        return Outcome.APPLIED  # nothing a snapshot records

    def bind(self, action: Bind) -> Outcome:
        alloc = action.allocation
        job = self.jobs[action.job]
        update: dict = {"status": JobStatus.RUNNING, "allocation": alloc}
        if self.now is not None:
            update["started_at"] = self.now
        self.jobs[job.id] = job.model_copy(update=update)
        if alloc.mig_slot is not None:
            self._set_instance_job(alloc.mig_slot, job.id, None)
        return Outcome.APPLIED

    def phase_done(self, phase: Phase) -> None:
        pass

    def _set_instance_job(self, slot: MigSlot, job_id: str | None, only_if: str | None) -> None:
        layout = self.instances.get((slot.node, slot.gpu_index), [])
        for i, inst in enumerate(layout):
            if inst.start == slot.start and (only_if is None or inst.job == only_if):
                layout[i] = inst.model_copy(update={"job": job_id})

    def snapshot(self) -> Snapshot:
        nodes = tuple(
            node.model_copy(update={"gpus": tuple(_with_instances(gpu, self.instances[(node.name, gpu.index)])
                                                  for gpu in node.gpus)})
            for node in self.base.nodes
        )
        return self.base.model_copy(update={"nodes": nodes, "jobs": tuple(self.jobs[j.id] for j in self.base.jobs)})


def _requeued(job: Job) -> Job:
    return job.model_copy(update={"status": JobStatus.PENDING, "allocation": None, "started_at": None})


def _with_instances(gpu: Gpu, layout: list[MigInstance]) -> Gpu:
    return gpu.model_copy(update={"mig_instances": tuple(sorted(layout, key=lambda i: i.start))})
