"""Quota policy: projects' deserved GPUs, what a job may take, and whose work may be reclaimed.

- Interactive (priority 100, non-preemptible) jobs must fit within their project's deserved quota:
  the project's non-preemptible holdings plus the new job stay at or below `deserved`.
- Preemptible jobs may run above quota on spare GPUs (no preemption needed).
- Reclaim: a project that stays within its deserved quota with the new job may take GPUs back from
  preemptible work of projects above their quota, never pushing those below it ("in-quota
  resources are never reclaimed", as KAI).
Charges are exact fractions: a MIG instance counts compute-slices/compute_slices, a fraction its
share, so 0.1 + 0.2 fits a quota of 0.3.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction

from ..model import Job, JobStatus
from .state import ClusterState


def fmt_gpus(value: Fraction | float) -> str:
    """`2`, `0.5`, `0.43` — GPUs as people read them."""
    number = float(value)
    return f"{number:.2f}".rstrip("0").rstrip(".") if number != int(number) else str(int(number))


def interactive_room(state: ClusterState, job: Job) -> Fraction | None:
    """GPUs a non-preemptible job may still take in its project; None when the job is preemptible."""
    if job.type.preemptible:
        return None
    held = state.firm_usage.get(job.project, Fraction(0))
    return state.deserved_of(job.project) - held


def within_interactive_quota(state: ClusterState, job: Job, charge: Fraction) -> bool:
    room = interactive_room(state, job)
    return room is None or charge <= room


def quota_reason(state: ClusterState, job: Job, charge: Fraction) -> str:
    held = state.firm_usage.get(job.project, Fraction(0))
    deserved = state.deserved_of(job.project)
    unit = "GPU" if deserved == 1 else "GPUs"
    return (
        f"project {job.project} would exceed its deserved {fmt_gpus(deserved)} {unit} "
        f"(interactive jobs hold {fmt_gpus(held)}, this one needs {fmt_gpus(charge)}); "
        "interactive jobs must fit within the project's quota"
    )


def may_reclaim(state: ClusterState, job: Job, charge: Fraction) -> bool:
    """A project may reclaim from others only while it stays within its deserved quota."""
    return state.usage_of(job.project) + charge <= state.deserved_of(job.project)


def victim_allowed(state: ClusterState, job: Job, victim: Job) -> bool:
    """Could `victim` ever make room for `job`? (Preempt within the project by strictly lower
    priority; reclaim across projects from preemptible work of a project above its quota.)"""
    # Only work running in the snapshot: not jobs already stopping, nor jobs bound by this plan.
    if not victim.type.preemptible or victim.status is not JobStatus.RUNNING or victim.id not in state.allocations:
        return False
    if victim.project == job.project:
        return victim.priority < job.priority
    return state.over_quota(victim.project)


def victim_candidates(state: ClusterState, job: Job) -> set[str]:
    """Every job that `victim_allowed` admits for `job`, found project by project."""
    found: set[str] = set()
    for project, running in state.preemptible_running.items():
        if project == job.project:
            found.update(v.id for v in running if v.priority < job.priority and v.id in state.allocations)
        elif state.over_quota(project):
            found.update(v.id for v in running if v.id in state.allocations)
    return found


def victim_set_allowed(state: ClusterState, job: Job, charge: Fraction, victims: Iterable[Job]) -> bool:
    """Every victim allowed, and reclaim leaves each victim project at or above its deserved quota."""
    taken: dict[str, Fraction] = {}
    own = Fraction(0)
    for victim in victims:
        if not victim_allowed(state, job, victim):
            return False
        if victim.project == job.project:
            own += state.charges[victim.id]
        else:
            taken[victim.project] = taken.get(victim.project, Fraction(0)) + state.charges[victim.id]
    if taken and not may_reclaim(state, job, charge - own):
        return False
    return all(state.usage_of(p) - t >= state.deserved_of(p) for p, t in taken.items())


def is_reclaim(job: Job, victim: Job) -> bool:
    return victim.project != job.project
