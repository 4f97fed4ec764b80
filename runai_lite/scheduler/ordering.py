"""Ordering policy: which pending job is considered next.

Higher priority first; within a priority, the most deprived project (allocated / deserved, read
afresh after every placement, so projects take turns) first; then submission time, then id.
Projects with no deserved quota come after every project that has one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from fractions import Fraction

from ..model import Job, JobStatus
from .state import ClusterState


def deprivation(state: ClusterState, project: str) -> tuple[int, Fraction]:
    deserved = state.deserved_of(project)
    if deserved > 0:
        return (0, state.usage_of(project) / deserved)
    return (1, state.usage_of(project))


def submission_key(job: Job) -> tuple[float, str]:
    return (job.submitted_at, job.id)


def pending_in_order(state: ClusterState) -> Iterator[Job]:
    """Yield Pending jobs one at a time; the caller places each before asking for the next."""
    by_priority: dict[int, dict[str, list[Job]]] = {}
    for job in state.jobs.values():
        if job.status is JobStatus.PENDING:
            by_priority.setdefault(job.priority, {}).setdefault(job.project, []).append(job)
    seen: dict[str, tuple[Fraction, tuple[int, Fraction]]] = {}

    def deprived(project: str) -> tuple[int, Fraction]:
        # Usage values are replaced, never changed in place: an identical object means no change.
        usage = state.usage_of(project)
        if project not in seen or seen[project][0] is not usage:
            seen[project] = (usage, deprivation(state, project))
        return seen[project][1]

    for priority in sorted(by_priority, reverse=True):
        queues = {p: deque(sorted(jobs, key=submission_key)) for p, jobs in by_priority[priority].items()}
        while queues:
            project = min(queues, key=lambda p: (deprived(p), p))
            queue = queues[project]
            yield queue.popleft()
            if not queue:
                del queues[project]
