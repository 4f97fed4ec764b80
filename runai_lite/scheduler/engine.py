"""`plan()`: one scheduling cycle. Pending jobs in policy order; for each, allocate on free
capacity, else wait for jobs already stopping, else preempt or reclaim, else say why it waits."""

from __future__ import annotations

from fractions import Fraction

from ..model import MILLI, Job, Plan, Snapshot
from .actions.allocate import allocate
from .actions.preempt import preempt
from .ordering import pending_in_order
from .quota import interactive_room, quota_reason
from .reasons import capacity_reason, waiting_reason
from .session import Session


def plan(snapshot: Snapshot) -> Plan:
    """Decide what to do next. Pure and deterministic: the same snapshot gives the same plan."""
    session = Session(snapshot)
    unplaced: list[Job] = []
    # A job that found no room fails again for an identical job until something is released or a
    # project goes over its quota (placements only take room): `session.generation` counts those.
    failed: dict[tuple, tuple[int, str | None]] = {}
    for job in pending_in_order(session.state):
        key = (job.project, job.type, job.request, job.cpu_milli, job.memory_mib, job.gpu_models)
        earlier = failed.get(key)
        if earlier is not None and earlier[0] == session.generation:
            reason = earlier[1]
        else:
            reason = _place(session, job)
            if reason != "":
                failed[key] = (session.generation, reason)
        if reason is None:
            unplaced.append(job)
        elif reason:
            session.pending[job.id] = reason
    reasons: dict[tuple, str] = {}
    for job in unplaced:
        key = (job.project, job.type, job.request, job.cpu_milli, job.memory_mib, job.gpu_models)
        if key not in reasons:
            reasons[key] = capacity_reason(session, job)
        session.pending[job.id] = reasons[key]
    return session.result()


def _place(session: Session, job: Job) -> str | None:
    """Place the job: "" when bound, else why not (None: no room, worded once the plan is done)."""
    known_charge = _known_charge(job)
    room = interactive_room(session.state, job)
    if room is not None and known_charge is not None and known_charge > room:
        return quota_reason(session.state, job, known_charge)
    attempt = allocate(session, job)
    if attempt.option is not None:
        session.commit(job, attempt.option)
        return ""
    stopping = _waiting_for(session, job)
    if stopping:
        return waiting_reason(session, stopping)
    forced = preempt(session, job)
    if forced.option is not None:
        session.commit(job, forced.option)
        return ""
    refused = [c for c in (attempt.quota_charge, forced.quota_charge) if c is not None]
    return quota_reason(session.state, job, min(refused)) if refused else None


def _known_charge(job: Job) -> Fraction | None:
    """What the job counts against its quota wherever it lands, when that does not depend on the GPU."""
    request = job.request
    if request is None:
        return Fraction(0)
    if request.kind == "gpus":
        return Fraction(request.gpus or 0)
    if request.kind == "fraction":
        return Fraction(request.fraction_milli, MILLI)
    return None


def _waiting_for(session: Session, job: Job) -> list[str]:
    """Preempted jobs still stopping whose resources would let this job run: wait for them rather
    than preempt anyone else."""
    state = session.state
    stopping = sorted(j for j in state.preempted if j in state.allocations)
    if not stopping:
        return []
    generation = session.generation
    held = {j: session.release(j) for j in stopping}
    try:
        option = allocate(session, job).option
    finally:
        for j, allocation in held.items():
            session.hold(j, allocation)
        session.generation = generation  # a trial: nothing changed
    if option is None:
        return []
    gpus = {(option.node.name, g.index) for g in option.gpus}
    on_gpus = [j for j in stopping if {(held[j].node, i) for i in held[j].gpu_indices} & gpus]
    on_node = [j for j in stopping if held[j].node == option.node.name]
    return on_gpus or on_node or stopping
