"""The scheduling unit: plan from the store's snapshot and record the plan as intents."""

from __future__ import annotations

from ....model import JobStatus, Snapshot
from ....scheduler import plan as schedule_plan
from ..crashpoints import crash_point
from ..intents import record_plan
from ..snapshot import build_snapshot
from .context import DaemonContext


class Scheduler:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx

    def snapshot(self) -> Snapshot:
        store = self.ctx.store
        with store.read() as conn:
            rows = store.active_jobs(conn)
            gpus = store.gpus(self.ctx.node, conn)
            layout = store.mig_layout(self.ctx.node, conn)
            projects = store.projects(conn)
        return build_snapshot(self.ctx.node, gpus, layout, rows, projects)

    def __call__(self, now: float) -> bool:
        snapshot = self.snapshot()
        if not any(job.status == JobStatus.PENDING for job in snapshot.jobs):
            return False
        plan = schedule_plan(snapshot)
        if self.ctx.foreign_gpus:  # say why the machine seems to have fewer GPUs than it has
            owned = "; ".join(self.ctx.foreign_gpus.values())
            plan = plan.model_copy(update={"pending": tuple((job, f"{why} ({owned})") for job, why in plan.pending)})
        if not plan.actions and not plan.pending:
            return False
        with self.ctx.store.write() as conn:
            applied = record_plan(self.ctx.store, conn, plan, self.ctx.node, now)
        if applied:
            crash_point("plan-recorded")
        return applied > 0
