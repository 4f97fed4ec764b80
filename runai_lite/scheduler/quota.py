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

from fractions import Fraction

from ..model import Job
from .state import ClusterState


def fmt_gpus(value: Fraction | float) -> str:
    """`2`, `0.5`, `0.43` — GPUs as people read them."""
    number = float(value)
    return f"{number:.2f}".rstrip("0").rstrip(".") if number != int(number) else str(int(number))


def gpus_text(value: Fraction | float) -> str:
    """`1 GPU`, `2 GPUs`, `0.5 GPUs`: a number of GPUs with its noun."""
    return f"{fmt_gpus(value)} GPU" if value == 1 else f"{fmt_gpus(value)} GPUs"


def interactive_room(state: ClusterState, job: Job) -> Fraction | None:
    """GPUs a non-preemptible job may still take in its project; None when the job is preemptible."""
    if job.type.preemptible:
        return None
    held = state.firm_usage.get(job.project, Fraction(0))
    return state.deserved_of(job.project) - held


def quota_reason(state: ClusterState, job: Job, charge: Fraction) -> str:
    held = state.firm_usage.get(job.project, Fraction(0))
    deserved = state.deserved_of(job.project)
    unit = "GPU" if deserved == 1 else "GPUs"
    return (
        f"project {job.project} would exceed its deserved {fmt_gpus(deserved)} {unit} "
        f"(interactive jobs hold {fmt_gpus(held)}, this one needs {fmt_gpus(charge)}); "
        "interactive jobs must fit within the project's quota"
    )


def victim_candidates(state: ClusterState, job: Job) -> set[str]:
    """Who may be stopped to make room for `job`: in its own project, running preemptible jobs of
    strictly lower priority (preempt); in other projects, running preemptible jobs of projects above
    their deserved quota (reclaim, subject to `ReclaimRule` for the whole set)."""
    found: set[str] = set()
    may_reclaim = state.usage_of(job.project) < state.deserved_of(job.project)
    for project, running in state.preemptible_running.items():
        if project == job.project:
            found.update(v.id for v in running if v.priority < job.priority and v.id in state.allocations)
        elif may_reclaim and state.over_quota(project):
            found.update(v.id for v in running if v.id in state.allocations)
    return found


class ReclaimRule:
    """The set-level reclaim rule for victims already allowed one by one: the job's project stays
    within its quota, and no victim project is taken below its own. Built once per job, it keeps
    the per-project figures so that judging thousands of candidate victim sets stays cheap."""

    def __init__(self, state: ClusterState, job: Job):
        self.state = state
        self.job = job
        self.room = state.deserved_of(job.project) - state.usage_of(job.project)
        self._room_for: dict[Fraction, bool] = {}
        self._slack: dict[str, Fraction] = {}
        self._alone: dict[str, bool] = {}

    def slack(self, project: str) -> Fraction:
        if project not in self._slack:
            self._slack[project] = self.state.usage_of(project) - self.state.deserved_of(project)
        return self._slack[project]

    def allows(self, charge: Fraction, victims: list[Job]) -> bool:
        others = [v for v in victims if v.project != self.job.project]
        if not others:
            return True
        own = [v for v in victims if v.project == self.job.project]
        if own:
            if charge - sum(self.state.charges[v.id] for v in own) > self.room:
                return False
        else:
            if charge not in self._room_for:
                self._room_for[charge] = charge <= self.room
            if not self._room_for[charge]:
                return False
        if len({v.project for v in others}) == len(others):
            return all(self._alone_ok(v) for v in others)
        taken: dict[str, Fraction] = {}
        for victim in others:
            taken[victim.project] = taken.get(victim.project, Fraction(0)) + self.state.charges[victim.id]
        return all(t <= self.slack(p) for p, t in taken.items())

    def _alone_ok(self, victim: Job) -> bool:
        if victim.id not in self._alone:
            self._alone[victim.id] = self.state.charges[victim.id] <= self.slack(victim.project)
        return self._alone[victim.id]
