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
from ...model import Allocation, Bind, CreateMig, DestroyMig, JobStatus, Plan, Preempt
from .events import BOUND, PENDING, PREEMPTED, REQUEUED
from .snapshot import CREATING, DESTROYING, READY
from .store import Store

log = logging.getLogger(__name__)



def record_plan(store: Store, conn: sqlite3.Connection, plan: Plan, node: str, now: float) -> int:
    """Write the plan's intents; returns how many actions took effect."""
    catalog = default_catalog()
    dynamic = {g["gpu_index"]: catalog.find(g["model"]) for g in store.gpus(node, conn) if g["dynamic_mig"]}
    applied = 0
    for action in plan.actions:
        if isinstance(action, Preempt):
            applied += _preempt(store, conn, action, now)
        elif isinstance(action, DestroyMig):
            applied += _destroy(conn, action, dynamic)
        elif isinstance(action, CreateMig):
            applied += _create(conn, action, dynamic)
        elif isinstance(action, Bind):
            applied += _bind(store, conn, action, now)
        # Reserve: the embedded node has no other scheduler to keep off a shared GPU.
    for job_id, reason in plan.pending:
        cursor = conn.execute(
            "UPDATE jobs SET pending_reason = ? WHERE id = ? AND status = 'Pending' AND allocation IS NULL "
            "AND delete_requested = 0 AND pending_reason IS NOT ?", (reason, job_id, reason))
        if cursor.rowcount:
            store.add_event(conn, job_id, PENDING, reason, now)
    return applied


def _preempt(store: Store, conn: sqlite3.Connection, action: Preempt, now: float) -> int:
    row = store.job(action.job, conn)
    if row is None or row.delete_requested:
        return 0
    if not row.job_type.preemptible:
        log.error("the plan preempts %s, an interactive job, which is never preempted; ignored", row.key)
        return 0
    if row.bound:
        store.update_job(conn, row.id, allocation=None, pending_reason="requeued: preempted before it started")
        store.add_event(conn, row.id, PREEMPTED, action.reason, now)
        store.add_event(conn, row.id, REQUEUED, "back in the queue; it had not started", now)
        return 1
    if row.status != JobStatus.RUNNING:
        return 0
    store.update_job(conn, row.id, status=JobStatus.PREEMPTED.value)
    store.add_event(conn, row.id, PREEMPTED, action.reason, now)
    return 1


def _destroy(conn: sqlite3.Connection, action: DestroyMig, dynamic: dict[int, GpuModel | None]) -> int:
    if action.gpu_index not in dynamic:
        return 0
    cursor = conn.execute(
        "UPDATE mig_layout SET state = ? WHERE node = ? AND gpu_index = ? AND start = ? AND profile = ? "
        "AND state != ?", (DESTROYING, action.node, action.gpu_index, action.start, action.profile, DESTROYING))
    return cursor.rowcount


def _create(conn: sqlite3.Connection, action: CreateMig, dynamic: dict[int, GpuModel | None]) -> int:
    model = dynamic.get(action.gpu_index)
    if model is None:
        return 0
    size = model.profile(action.profile).memory_slices
    conn.execute(
        "INSERT INTO mig_layout (node, gpu_index, start, profile, size, state, for_job) VALUES (?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(node, gpu_index, start, profile) DO UPDATE SET for_job = excluded.for_job, "
        "state = CASE WHEN uuid IS NULL THEN ? ELSE ? END",
        (action.node, action.gpu_index, action.start, action.profile, size, CREATING, action.for_job, CREATING, READY))
    return 1


def _bind(store: Store, conn: sqlite3.Connection, action: Bind, now: float) -> int:
    row = store.job(action.job, conn)
    if row is None or row.status != JobStatus.PENDING or row.allocation is not None or row.delete_requested:
        return 0
    alloc = action.allocation
    store.update_job(conn, row.id, allocation=alloc.model_dump_json(), pending_reason="starting")
    store.add_event(conn, row.id, BOUND, _where(alloc) + f": {action.reason}", now)
    if alloc.kind == "mig" and alloc.mig_start is not None:
        conn.execute("UPDATE mig_layout SET last_job = ? WHERE node = ? AND gpu_index = ? AND start = ? AND profile = ?",
                     (row.id, alloc.node, alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile))
    return 1


def _where(alloc: Allocation) -> str:
    gpus = ",".join(str(i) for i in alloc.gpu_indices)
    if not gpus:
        return f"bound to {alloc.node} (no GPU)"
    if alloc.kind == "mig":
        return f"bound to {alloc.mig_profile} at slice {alloc.mig_start} of GPU {gpus} on {alloc.node}"
    if alloc.kind == "fraction":
        return f"bound to {alloc.share_milli / 1000:g} of GPU {gpus} on {alloc.node}"
    return f"bound to GPU {gpus} on {alloc.node}"
