"""Ordering policy: which pending job is considered next.

Within a project: higher priority first, then submission time (then id). Across projects, each
project's next job competes: work that fits its project's deserved quota before work that would
run above it (over-quota work only ever gets spare GPUs and is the first to be reclaimed, so
placing it ahead of another project's in-quota job would only have it reclaimed next cycle); then
higher priority; then the most deprived project (allocated / deserved, read afresh after every
placement, so projects take turns; projects with no deserved quota after every project with one);
then submission time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from fractions import Fraction

from ..model import MILLI, Job, RequestKind
from .state import ClusterState


def deprivation(state: ClusterState, project: str) -> tuple[int, Fraction]:
    deserved = state.deserved_of(project)
    if deserved > 0:
        return (0, state.usage_of(project) / deserved)
    return (1, state.usage_of(project))


def least_charge(job: Job) -> Fraction:
    """What the job counts against its quota at least, wherever it lands (exact for whole GPUs and
    `--gpu` fractions; a memory or MIG request's charge depends on the GPU, so 0 here)."""
    request = job.request
    if request is None:
        return Fraction(0)
    if request.kind == RequestKind.GPUS:
        return Fraction(request.gpus or 0)
    if request.kind == RequestKind.FRACTION:
        return Fraction(request.fraction_milli, MILLI)
    return Fraction(0)


def submission_key(job: Job) -> tuple[float, str]:
    return (job.submitted_at, job.id)


class PendingOrder:
    """Pending jobs one at a time; the caller places each before asking for the next, and may
    `defer` one whose placement turned out to take its project above its quota (a memory or MIG
    request's charge is known only once placed): it comes back with the over-quota work."""

    def __init__(self, state: ClusterState, jobs: Iterable[Job]):
        self.state = state
        self.deferred: set[str] = set()
        self.queues: dict[str, deque[Job]] = {}  # per project: higher priority first, then submission
        for job in sorted(jobs, key=lambda j: (-j.priority, *submission_key(j))):
            self.queues.setdefault(job.project, deque()).append(job)
        self._seen: dict[str, tuple[Fraction, tuple[int, Fraction]]] = {}

    def _deprived(self, project: str) -> tuple[int, Fraction]:
        # Usage values are replaced, never changed in place: an identical object means no change.
        usage = self.state.usage_of(project)
        if project not in self._seen or self._seen[project][0] is not usage:
            self._seen[project] = (usage, deprivation(self.state, project))
        return self._seen[project][1]

    def over_quota_with(self, job: Job, charge: Fraction) -> bool:
        """Would the job run above its project's quota? (A GPU job whose charge is not known yet
        does once the project has used all it deserves.)"""
        usage, deserved = self.state.usage_of(job.project), self.state.deserved_of(job.project)
        if charge == 0 and job.request is not None:
            return usage >= deserved
        return usage + charge > deserved

    def _key(self, project: str) -> tuple:
        head = self.queues[project][0]
        # Interactive jobs are never over quota: they fit their project's quota or are refused.
        over = head.type.preemptible and (head.id in self.deferred or self.over_quota_with(head, least_charge(head)))
        return (over, -head.priority, self._deprived(project), submission_key(head))

    def next(self) -> Job | None:
        if not self.queues:
            return None
        chosen = min(self.queues, key=self._key)
        queue = self.queues[chosen]
        job = queue.popleft()
        if not queue:
            del self.queues[chosen]
        return job

    def defer(self, job: Job) -> None:
        self.deferred.add(job.id)
        self.queues.setdefault(job.project, deque()).appendleft(job)

    def others_have_in_quota_work(self, project: str) -> bool:
        """Is a job of another project that fits that project's quota still to be considered (one
        that could reclaim from `project` next cycle)?"""
        return any(other != project and not self._key(other)[0] for other in self.queues)
