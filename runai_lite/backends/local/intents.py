"""Recording a plan in the store: the first half of applying it.

All of a plan's decisions are written in one transaction before anything is done about them: a
preempted job becomes `Preempted` (the daemon then stops its process), a bound job gets its
allocation (the daemon starts it once what it was given is free), a partition to create or destroy
becomes a `creating` / `destroying` row (the agent realises it). A daemon that dies at any point
after the commit finds every intent in the store and carries it out; one that dies before finds
nothing and plans again.

Each action is checked against the row as it is *now* (the CLI may have deleted a job since the
snapshot), and skipped if it no longer applies.
"""

from __future__ import annotations

import logging
import sqlite3

from ...gpu.catalog import GpuModel, default_catalog
from ...model import Bind, CreateMig, DestroyMig, JobStatus, Plan, Preempt, Reserve
from ...scheduler.applier import Applied, Outcome, Phase, apply
from .events import BOUND, PENDING, PREEMPTED, REQUEUED
from .store import Store

log = logging.getLogger(__name__)


def record_plan(store: Store, conn: sqlite3.Connection, plan: Plan, node: str, now: float) -> Applied:
    """Write the plan's intents; returns what took effect."""
    applied = apply(plan, IntentRecorder(store, conn, node, now))
    for job_id, reason in plan.pending:
        if store.set_pending_reason(conn, job_id, reason, unbound_only=True):
            store.add_event(conn, job_id, PENDING, reason, now)
    return applied


class IntentRecorder:
    """The embedded `PlanApplier`: each handler writes its action's intent in the open transaction."""

    def __init__(self, store: Store, conn: sqlite3.Connection, node: str, now: float):
        self.store, self.conn, self.node, self.now = store, conn, node, now
        catalog = default_catalog()
        self.gpus = {g.gpu_index: g for g in store.gpus(node, conn)}
        self.dynamic: dict[int, GpuModel | None] = {
            g.gpu_index: catalog.find(g.model) for g in self.gpus.values() if g.dynamic_mig}

    def preempt(self, action: Preempt) -> Outcome:
        store, conn, now = self.store, self.conn, self.now
        row = store.job(action.job, conn)
        if row is None or row.delete_requested:
            return Outcome.SKIPPED
        if not row.job_type.preemptible:
            log.error("the plan preempts %s, an interactive job, which is never preempted; ignored", row.key)
            return Outcome.SKIPPED
        if row.bound:
            store.update_job(conn, row.id, allocation=None, pending_reason="requeued: preempted before it started")
            store.add_event(conn, row.id, PREEMPTED, action.reason, now)
            store.add_event(conn, row.id, REQUEUED, "back in the queue; it had not started", now)
            return Outcome.APPLIED
        if row.status != JobStatus.RUNNING:
            return Outcome.SKIPPED
        store.update_job(conn, row.id, status=JobStatus.PREEMPTED.value)
        store.add_event(conn, row.id, PREEMPTED, action.reason, now)
        return Outcome.APPLIED

    def destroy_mig(self, action: DestroyMig) -> Outcome:
        if action.gpu_index not in self.dynamic:
            return Outcome.SKIPPED
        done = self.store.partition_to_destroy(self.conn, action.node, action.gpu_index, action.start, action.profile)
        return Outcome.APPLIED if done else Outcome.SKIPPED

    def create_mig(self, action: CreateMig) -> Outcome:
        model = self.dynamic.get(action.gpu_index)
        if model is None:
            return Outcome.SKIPPED
        size = model.profile(action.profile).memory_slices
        self.store.partition_to_create(self.conn, action.node, action.gpu_index, action.start, action.profile, size,
                                       action.for_job)
        return Outcome.APPLIED

    def reserve(self, action: Reserve) -> Outcome:
        """Nothing to write: the embedded node has no other scheduler to keep off a shared GPU, and
        the fraction jobs' allocations (written by `bind`) are what marks it shared."""
        return Outcome.APPLIED if action.gpu_index in self.gpus else Outcome.SKIPPED

    def bind(self, action: Bind) -> Outcome:
        store, conn, now = self.store, self.conn, self.now
        row = store.job(action.job, conn)
        if row is None or row.status != JobStatus.PENDING or row.allocation is not None or row.delete_requested:
            return Outcome.SKIPPED
        alloc = action.allocation
        store.update_job(conn, row.id, allocation=alloc.model_dump_json(), pending_reason="starting")
        store.add_event(conn, row.id, BOUND, f"bound to {alloc.describe()}: {action.reason}", now)
        if alloc.kind == "mig" and alloc.mig_start is not None and alloc.mig_profile is not None:
            store.partition_bound(conn, alloc.node, alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile, row.id)
        return Outcome.APPLIED

    def phase_done(self, phase: Phase) -> None:
        """Every intent is in the one transaction: nothing to do between phases."""

