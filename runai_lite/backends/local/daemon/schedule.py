"""The scheduling unit: plan from the store's snapshot and record the plan as intents."""

from __future__ import annotations

import time

from ....model import JobStatus, Snapshot
from ....scheduler import plan as schedule_plan
from ..crashpoints import crash_point
from ..intents import record_plan
from .. import machine
from ..snapshot import NodeHost, backing_off, build_snapshot, node_type_reason
from ..store import NodeRow
from .context import DaemonContext


class Scheduler:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx
        self.next_retry: float | None = None  # the earliest retry of a job backing off, as last read

    def snapshot(self, now: float | None = None) -> Snapshot:
        return self._read(now)[0]

    def retry_due(self, now: float) -> bool:
        """A job's backoff has passed since the last plan: plan now rather than at the next replan."""
        return self.next_retry is not None and now >= self.next_retry

    def _read(self, now: float | None) -> tuple[Snapshot, NodeHost, dict[str, str]]:
        """The snapshot (at `now`: jobs backing off left out), the node's host facts and the node
        type each job asks for."""
        store = self.ctx.store
        with store.read() as conn:
            rows = store.active_jobs(conn)
            gpus = store.gpus(self.ctx.node, conn)
            layout = store.mig_layout(self.ctx.node, conn)
            projects = store.projects(conn)
            declared = store.node_row(self.ctx.node, conn)
        host = node_host(declared)
        wanted = {r.id: r.job_spec.node_type for r in rows if r.job_spec.node_type is not None}
        self.next_retry = min((r.retry_at for r in rows if backing_off(r, now)), default=None)  # type: ignore[type-var]
        return build_snapshot(self.ctx.node, gpus, layout, rows, projects, host=host, now=now), host, wanted

    def __call__(self, now: float) -> bool:
        started = time.perf_counter()
        snapshot, host, node_types = self._read(now)
        if not any(job.status == JobStatus.PENDING for job in snapshot.jobs):
            self.ctx.metrics.observe_no_pending()
            return False
        plan = schedule_plan(snapshot)
        if node_types:  # the scheduler only knows the job may run nowhere; say it is the node type
            plan = plan.model_copy(update={"pending": tuple(
                (job, node_type_reason(self.ctx.node, host, node_types[job]) if node_types.get(job, host.node_type)
                 != host.node_type else why) for job, why in plan.pending)})
        if self.ctx.foreign_gpus:  # say why the machine seems to have fewer GPUs than it has
            owned = "; ".join(self.ctx.foreign_gpus.values())
            plan = plan.model_copy(update={"pending": tuple((job, f"{why} ({owned})") for job, why in plan.pending)})
        if not plan.actions and not plan.pending:
            return False
        with self.ctx.store.write() as conn:
            applied = record_plan(self.ctx.store, conn, plan, self.ctx.node, now)
        self.ctx.metrics.observe_plan(snapshot, plan, time.perf_counter() - started, preempted=applied.preempted)
        if applied.applied:
            crash_point("plan-recorded")
        return applied.applied > 0


def node_host(declared: NodeRow) -> NodeHost:
    """The node's capacity as declared, else as the machine has it; its declared type."""
    return NodeHost(cpu_milli=declared.cpu_milli if declared.cpu_milli is not None else machine.cpu_milli(),
                    memory_mib=declared.memory_mib if declared.memory_mib is not None else machine.memory_mib(),
                    node_type=declared.node_type)
