"""What `runai list` shows of a home's jobs, read straight from its database.

`Store.live_jobs` with `JobRow.to_info` builds two pydantic models per job (its spec and its
allocation) and a `JobInfo`: for a thousand jobs, and the import of the models, that is most of
what `runai list` costs. A row of the list needs only a few fields of them, so this reads them
read-only with `sqlite3` alone, SQLite taking them out of the stored JSON, as plain values. The
rules are `to_info`'s (an allocation only while the job holds it; the node it ran on kept once it
ended), and `tests/local/test_job_summaries.py` holds this module to `to_info(...).summary()` for
jobs in every state.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ...errors import OperationalError
from ...kinds import MILLI, AllocationKind, JobStatus, JobType, allocated_gpus, request_text
from ..summary import JobSummary
from .paths import repair_command

BUSY_TIMEOUT_SECONDS = 5.0
_STATUS = {s.value: s for s in JobStatus}
_TYPE = {t.value: t for t in JobType}
_HOLDING = (JobStatus.RUNNING.value, JobStatus.PREEMPTED.value)
_TERMINAL = {s.value for s in JobStatus if s.terminal}
_MIG = AllocationKind.MIG.value
# SQLite takes the few fields a row shows out of the stored JSON (in C, faster than json.loads),
# those of the allocation only where it is shown: while the job holds it.
_HELD = "CASE WHEN status IN ({}) THEN {{}} END".format(", ".join(f"'{s}'" for s in _HOLDING))
_COLUMNS = ", ".join((
    "name", "project", "type", "user", "status", "submitted_at", "started_at",
    "json_extract(spec, '$.image')", "json_extract(spec, '$.request.gpus')", "json_extract(spec, '$.request.fraction')",
    "json_extract(spec, '$.request.memory_bytes')", "json_extract(spec, '$.request.mig_profile')",
    *(_HELD.format(column) for column in (
        "json_extract(allocation, '$.node')", "json_extract(allocation, '$.kind')",
        "json_array_length(allocation, '$.gpu_indices')", "json_extract(allocation, '$.share_milli')",
        "json_extract(allocation, '$.mig_profile')")),
))


def job_summaries(db: Path, project: str | None) -> list[JobSummary]:
    """The project's jobs (every project's with None) that are not deleted, oldest first."""
    where, params = "status != ?", (JobStatus.DELETED.value,)
    if project is not None:
        where, params = "project = ? AND " + where, (project, *params)
    try:
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        try:
            node_row = conn.execute("SELECT value FROM config WHERE key = 'node'").fetchone()
            rows = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE {where} ORDER BY submitted_at", params).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        if type(exc) is sqlite3.DatabaseError:  # not a database, or a damaged one: as the store says it
            raise OperationalError(f"the state database {db} is damaged ({exc})",
                                   f"rebuild what can still be read (a backup is kept): {repair_command(db)}") from None
        raise OperationalError(f"the state database {db} failed: {exc}") from exc
    node = json.loads(node_row[0]) if node_row else None
    return [summary(row, node) for row in rows]


def summary(row: tuple, node: str | None) -> JobSummary:
    """One row of the query above as `runai list` shows it; `node` is the machine's."""
    (name, project, job_type, user, status, submitted_at, started_at, image, gpus, fraction, memory_bytes, mig_profile,
     alloc_node, alloc_kind, alloc_gpus, share_milli, alloc_profile) = row
    holding = alloc_node is not None  # held and stored (the query reads it only while held)
    if holding:
        where = alloc_node
    else:
        where = node if status in _TERMINAL and started_at is not None else None
    return JobSummary(  # by position: a thousand rows, keywords cost more than the rest
        name, project, _STATUS[status], _TYPE[job_type], image, user, submitted_at, where,
        request_text(gpus, fraction, memory_bytes, mig_profile),
        allocated_gpus(alloc_gpus, share_milli if share_milli is not None else MILLI) if holding else None,
        alloc_profile if holding and alloc_kind == _MIG else None)
