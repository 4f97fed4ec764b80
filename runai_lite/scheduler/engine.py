"""`plan()`: one scheduling cycle. Pending jobs in policy order; for each, allocate on free
capacity, else wait for jobs already stopping, else preempt or reclaim, else say why it waits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from ..model import Job, JobStatus, Plan, Snapshot
from .actions.allocate import allocate
from .actions.preempt import preempt
from .ordering import PendingOrder, least_charge
from .quota import interactive_room, quota_reason
from .reasons import capacity_reason, waiting_reason
from .session import Session

# Passes over the jobs left pending: a later placement can make an earlier job placeable (its
# project going over quota makes its running work reclaimable), so they get another look.
PASSES = 3


class Placed(Enum):
    """A job `_place` dealt with: bound, or put back behind in-quota work (it comes up again)."""

    BOUND = "bound"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True)
class Unplaced:
    """A job that stays pending, and why (None: no room, worded once the plan is done)."""

    reason: str | None


def plan(snapshot: Snapshot) -> Plan:
    """Decide what to do next. Pure and deterministic: the same snapshot gives the same plan."""
    if not has_pending(snapshot):
        return Plan()  # only pending jobs are placed: skip building the working state of a large cluster
    return cycle(Session(snapshot))


def has_pending(snapshot: Snapshot) -> bool:
    return any(job.status is JobStatus.PENDING for job in snapshot.jobs)


def cycle(session: Session) -> Plan:
    """One cycle over a session's pending jobs; the plan. It changes the session's state."""
    # A job that found no room fails again for an identical job until something is released or a
    # project goes over its quota (placements only take room): `session.generation` counts those.
    failed: dict[tuple, tuple[int, Unplaced]] = {}
    left: dict[str, tuple[int, Unplaced]] = {}  # job id -> (generation it failed in, why)
    jobs = [j for j in session.state.jobs.values() if j.status is JobStatus.PENDING]
    for _ in range(PASSES):
        order = PendingOrder(session.state, jobs)
        while (job := order.next()) is not None:
            key = _job_class(job)
            earlier = failed.get(key)
            if earlier is not None and earlier[0] == session.generation:
                outcome: Placed | Unplaced = earlier[1]
            else:
                outcome = _place(session, job, order)
                if outcome is Placed.DEFERRED:
                    continue
                if isinstance(outcome, Unplaced):
                    failed[key] = (session.generation, outcome)
            if isinstance(outcome, Unplaced):
                left[job.id] = (session.generation, outcome)
            else:
                left.pop(job.id, None)
        jobs = [session.job(j) for j, (generation, _) in left.items() if generation != session.generation]
        if not jobs:
            break
    reasons: dict[tuple, str] = {}
    for job_id, (_, unplaced) in left.items():
        job = session.job(job_id)
        reason = unplaced.reason
        if reason is None:
            key = _job_class(job)
            if key not in reasons:
                reasons[key] = capacity_reason(session, job)
            reason = reasons[key]
        session.plan.pending[job_id] = reason
    return session.plan.result()


def _job_class(job: Job) -> tuple:
    """Jobs alike in everything placement looks at."""
    return (job.project, job.type, job.request, job.cpu_milli, job.memory_mib, job.gpu_models)


def _place(session: Session, job: Job, order: PendingOrder) -> Placed | Unplaced:
    room = interactive_room(session.state, job)
    if room is not None and least_charge(job) > room:
        return Unplaced(quota_reason(session.state, job, least_charge(job)))
    attempt = allocate(session, job)
    if attempt.option is not None:
        if (job.type.preemptible and job.id not in order.deferred
                and order.over_quota_with(job, attempt.option.charge) and order.others_have_in_quota_work(job.project)):
            order.defer(job)  # over-quota work waits for in-quota work, which could reclaim it next cycle
            return Placed.DEFERRED
        session.commit(job, attempt.option)
        return Placed.BOUND
    stopping = _waiting_for(session, job)
    if stopping:
        return Unplaced(waiting_reason(session, stopping))
    forced = preempt(session, job)
    if forced.option is not None:
        session.commit(job, forced.option)
        return Placed.BOUND
    refused = [c for c in (attempt.quota_charge, forced.quota_charge) if c is not None]
    return Unplaced(quota_reason(session.state, job, min(refused)) if refused else None)


def _waiting_for(session: Session, job: Job) -> list[str]:
    """Preempted jobs still stopping whose resources would let this job run: wait for them rather
    than preempt anyone else."""
    state = session.state
    stopping = sorted(j for j in state.preempted if j in state.allocations)
    if not stopping:
        return []
    with session.trial() as trial:  # rolled back: the stopping jobs still hold their resources
        held = {j: trial.release(j) for j in stopping}
        option = allocate(session, job).option
    if option is None:
        return []
    gpus = {(option.node.name, g.index) for g in option.gpus}
    on_gpus = [j for j in stopping if {(held[j].node, i) for i in held[j].gpu_indices} & gpus]
    on_node = [j for j in stopping if held[j].node == option.node.name]
    return on_gpus or on_node or stopping
