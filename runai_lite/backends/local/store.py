"""The embedded mode's state: one SQLite database in WAL mode, shared by every CLI process and the
daemon.

Every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two writers
queue on `busy_timeout` instead of deadlocking on a lock upgrade, and a lock that stays busy past
that is retried here rather than reaching a user as "database is locked". Commits are
`synchronous=FULL`, so a submission is on disk before `submit` returns.

The schema is versioned (`schema_version`); `MIGRATIONS[n]` takes version n to n + 1.

This module is the only one that speaks SQL: callers use its named queries and writes, and get
typed rows back (`JobRow`, `GpuRow`, `PartitionRow`, `ProjectRow`).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from ...errors import OperationalError, UserError
from ...model import STORED, Allocation, JobSpec, JobStatus, JobType, Submitter
from ..api import Event, JobInfo, JobOptions
from ..attempts import Attempt, AttemptEnd
from .paths import FILE_MODE, open_private, repair_command

MIGRATIONS: list[str] = [
    # 0 → 1: the first schema.
    """
    CREATE TABLE config (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE projects (
        name TEXT PRIMARY KEY,
        deserved_gpus REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        project TEXT NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        user TEXT NOT NULL,
        spec TEXT NOT NULL,
        runtime TEXT NOT NULL,
        status TEXT NOT NULL,
        submitted_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        allocation TEXT,
        pending_reason TEXT,
        exit_code INTEGER,
        attempts INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        delete_requested INTEGER NOT NULL DEFAULT 0,
        stop_sent_at REAL,
        kill_sent_at REAL,
        pid INTEGER,
        job_env TEXT,
        enforcement TEXT,
        memory_limit_mib INTEGER
    );
    CREATE UNIQUE INDEX jobs_live_name ON jobs(project, name) WHERE status != 'Deleted';
    CREATE INDEX jobs_status ON jobs(status);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        time REAL NOT NULL,
        kind TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_job ON events(job_id, seq);
    CREATE TABLE gpus (
        node TEXT NOT NULL,
        gpu_index INTEGER NOT NULL,
        uuid TEXT NOT NULL,
        model TEXT NOT NULL,
        memory_mib INTEGER NOT NULL,
        memory_slices INTEGER NOT NULL,
        mig_capable INTEGER NOT NULL,
        mig_enabled INTEGER NOT NULL,
        simulated INTEGER NOT NULL,
        dynamic_mig INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (node, gpu_index)
    );
    CREATE TABLE mig_layout (
        node TEXT NOT NULL,
        gpu_index INTEGER NOT NULL,
        start INTEGER NOT NULL,
        profile TEXT NOT NULL,
        size INTEGER NOT NULL,
        state TEXT NOT NULL,
        uuid TEXT,
        for_job TEXT,
        last_job TEXT,
        PRIMARY KEY (node, gpu_index, start, profile)
    );
    """,
    # 1 → 2: who submitted each job and from where (a `Submitter` as JSON); NULL for older jobs.
    "ALTER TABLE jobs ADD COLUMN submitter TEXT",
    # 2 → 3: what an administrator says about a node beyond its GPUs: the CPU and memory the
    # scheduler may hand out (NULL: what the machine has) and its Run:ai node type (`run.ai/type`).
    """
    CREATE TABLE nodes (
        name TEXT PRIMARY KEY,
        cpu_milli INTEGER,
        memory_mib INTEGER,
        node_type TEXT
    );
    """,
    # 3 → 4: each attempt's start and end (what `describe`, `logs --attempt` and the log's attempt
    # separators read), a job being suspended, and when a failed job's retry is due (its backoff).
    """
    CREATE TABLE attempts (
        job_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        started_at REAL NOT NULL,
        ended_at REAL,
        exit_code INTEGER,
        outcome TEXT,
        PRIMARY KEY (job_id, number)
    );
    ALTER TABLE jobs ADD COLUMN suspend_requested INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN retry_at REAL
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

BUSY_TIMEOUT_MS = 5000
WAL_RESERVE_BYTES = 5 * 1024 * 1024  # above SQLite's auto-checkpoint interval (1000 pages of 4 KiB)
LOCKED_RETRY_SECONDS = 60.0
ACTIVE_STATUSES = (JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.PREEMPTED.value)
_PENDING, _RUNNING, _PREEMPTED, _DELETED = (JobStatus.PENDING.value, JobStatus.RUNNING.value,
                                            JobStatus.PREEMPTED.value, JobStatus.DELETED.value)


class PartitionState(StrEnum):
    """`mig_layout.state`: what the daemon intends for a partition of a dynamic-MIG GPU, or `static`
    for a partition on a MIG GPU the scheduler does not manage (it may use it, never change it)."""

    CREATING = "creating"
    READY = "ready"
    DESTROYING = "destroying"
    STATIC = "static"


# The daemon reads every queued job's row on each pass, and parsing the same stored JSON again was
# half of what a pass over 1,000 queued jobs cost. A text always parses to the same value (a spec is
# never rewritten; an allocation or submitter is replaced whole) and the models are frozen, so each
# text is parsed once and its value shared (read only: nothing changes a record in place).
_PARSED_CACHE = 4096


@functools.lru_cache(maxsize=_PARSED_CACHE)
def _stored_spec(text: str) -> JobSpec:
    return JobSpec.model_validate_json(text)


@functools.lru_cache(maxsize=_PARSED_CACHE)
def _stored_allocation(text: str) -> Allocation:
    return Allocation.model_validate_json(text)


@functools.lru_cache(maxsize=_PARSED_CACHE)
def _stored_submitter(text: str) -> Submitter:
    return Submitter.model_validate_json(text, context={STORED: True})


@dataclass(frozen=True)
class JobRow:
    """One row of `jobs`. `status` Pending with an allocation means bound and about to start;
    Preempted means stopping to be requeued; `delete_requested` means stopping to be deleted."""

    id: str
    project: str
    name: str
    type: str
    user: str
    spec: str
    runtime: str
    status: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    allocation: str | None
    pending_reason: str | None
    exit_code: int | None
    attempts: int
    failures: int
    delete_requested: int
    stop_sent_at: float | None
    kill_sent_at: float | None
    pid: int | None
    job_env: str | None
    enforcement: str | None
    memory_limit_mib: int | None
    submitter: Submitter | None  # stored as JSON; None for jobs submitted before schema version 2
    suspend_requested: int = 0  # stopping to be suspended (`runai suspend` of a running job)
    retry_at: float | None = None  # a failed job waiting for its retry: not scheduled before this time

    def __post_init__(self) -> None:
        if isinstance(self.submitter, str):  # the column's JSON, as read from the database
            object.__setattr__(self, "submitter", _stored_submitter(self.submitter))

    @property
    def job_spec(self) -> JobSpec:
        return _stored_spec(self.spec)

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def job_type(self) -> JobType:
        return JobType(self.type)

    @property
    def alloc(self) -> Allocation | None:
        return _stored_allocation(self.allocation) if self.allocation else None

    @property
    def key(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def bound(self) -> bool:
        """Placed by the scheduler, process not started yet."""
        return self.status == JobStatus.PENDING and self.allocation is not None

    @property
    def stopping(self) -> bool:
        """Leaving what it holds: preempted (to be requeued) or to be deleted. Whether a process of
        it still runs is the process tracker's question."""
        return self.status == JobStatus.PREEMPTED or bool(self.delete_requested) or bool(self.suspend_requested)

    def env(self) -> dict[str, str]:
        return json.loads(self.job_env) if self.job_env else {}

    def to_info(self, events: tuple[Event, ...] = (), simulated: bool = False, node: str | None = None,
                attempts: tuple[Attempt, ...] = ()) -> JobInfo:
        """What commands show. A job shows an allocation (and its enforcement) only while its
        process holds it, and a start time only once it runs or ran: a bound job about to start,
        or one requeued after a preemption, is Pending with neither. A job that ran and ended
        keeps `node` (the embedded machine's one node) as where it ran. Only a finished job has an
        exit code of its own; an earlier attempt's is in its attempt history."""
        spec = self.job_spec
        holding = self.status in (JobStatus.RUNNING, JobStatus.PREEMPTED)
        pending = self.status == JobStatus.PENDING
        return JobInfo(
            name=self.name, project=self.project, type=self.job_type, status=self.job_status, image=spec.image,
            user=self.user, command=spec.command, working_dir=spec.working_dir, submitted_at=self.submitted_at,
            started_at=None if pending else self.started_at, finished_at=self.finished_at, request=spec.request,
            allocation=self.alloc if holding else None, pending_reason=self.pending_reason if pending else None,
            exit_code=self.exit_code if self.job_status.terminal else None, attempts=self.attempts,
            backoff_limit=spec.backoff_limit, attempt_history=attempts,
            enforcement=self.enforcement if holding or self.job_status.terminal else None,
            memory_limit_mib=self.memory_limit_mib if holding or self.job_status.terminal else None,
            simulated=simulated and holding, events=events, options=JobOptions.of(spec),
            ran_on=node if self.job_status.terminal and self.started_at is not None else None,
        )


_JOB_COLUMNS = ", ".join(f.name for f in fields(JobRow))


@dataclass(frozen=True)
class NodeRow:
    """One row of `nodes` (a node without a row has none of these set)."""

    name: str
    cpu_milli: int | None = None  # None: the machine's own
    memory_mib: int | None = None
    node_type: str | None = None


@dataclass(frozen=True)
class GpuRow:
    """One row of `gpus`: a GPU as the daemon last published it from its driver."""

    node: str
    gpu_index: int
    uuid: str
    model: str
    memory_mib: int
    memory_slices: int
    mig_capable: bool
    mig_enabled: bool
    simulated: bool
    dynamic_mig: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> GpuRow:
        return cls(node=row["node"], gpu_index=row["gpu_index"], uuid=row["uuid"], model=row["model"],
                   memory_mib=row["memory_mib"], memory_slices=row["memory_slices"],
                   mig_capable=bool(row["mig_capable"]), mig_enabled=bool(row["mig_enabled"]),
                   simulated=bool(row["simulated"]), dynamic_mig=bool(row["dynamic_mig"]))


@dataclass(frozen=True)
class PartitionRow:
    """One row of `mig_layout`: a MIG partition the daemon keeps (or means to make or destroy)."""

    node: str
    gpu_index: int
    start: int
    profile: str
    size: int
    state: PartitionState
    uuid: str | None = None
    for_job: str | None = None  # the job it is being made for
    last_job: str | None = None  # the last job bound to it

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> PartitionRow:
        return cls(node=row["node"], gpu_index=row["gpu_index"], start=row["start"], profile=row["profile"],
                   size=row["size"], state=PartitionState(row["state"]), uuid=row["uuid"], for_job=row["for_job"],
                   last_job=row["last_job"])

    @property
    def label(self) -> str:
        return f"{self.profile} at slice {self.start} of GPU {self.gpu_index}"


@dataclass(frozen=True)
class ProjectRow:
    name: str
    deserved_gpus: float


def new_job_id() -> str:
    return "j" + uuid.uuid4().hex[:15]


class Store:
    """A connection to the state database. One per process; not shared across threads."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            # SQLite gives its -wal and -shm files the database file's mode, so 0600 here is 0600 there.
            os.close(open_private(path, os.O_RDWR | os.O_CREAT))
        self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                    check_same_thread=False)
        self.conn.row_factory = sqlite3.Row
        self._retrying(self._configure)
        self._retrying(self._migrate)
        self._reserve_wal_space()

    def close(self) -> None:
        self.conn.close()

    # ---------------------------------------------------------------- transactions

    def _configure(self) -> None:
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = self.conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":  # pragma: no cover - only on filesystems without shared memory
            raise OperationalError(f"could not put {self.path} in WAL mode (got {mode})")
        self.conn.execute("PRAGMA synchronous = FULL")
        self.conn.execute("PRAGMA foreign_keys = ON")

    def _reserve_wal_space(self) -> None:
        """Give the write-ahead log its blocks up front (`fallocate`), so that a commit on a full
        disk (a job filling it with output) still has room: SQLite reuses the log from its start
        after each checkpoint and keeps its size, so a commit needs no new block while the log's
        position stays within the reserve (about one checkpoint interval). Best effort: a
        filesystem without the space or the call keeps today's behaviour."""
        try:
            fd = open_private(Path(f"{self.path}-wal"), os.O_RDWR | os.O_CREAT)
        except OSError:
            return
        try:
            if os.fstat(fd).st_blocks * 512 < WAL_RESERVE_BYTES:
                os.posix_fallocate(fd, 0, WAL_RESERVE_BYTES)
        except OSError:
            pass
        finally:
            os.close(fd)

    def _migrate(self) -> None:
        if self._version() == SCHEMA_VERSION:
            return  # the common case: no write lock needed to find out
        with self.write() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = conn.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise OperationalError(
                    f"the state in {self.path} has schema version {version}, newer than this runai-lite "
                    f"understands ({SCHEMA_VERSION})", "upgrade runai-lite, or point RUNAI_LITE_HOME elsewhere")
            for step in MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if row is None:
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        if self.path.stat().st_mode & 0o777 != FILE_MODE:
            self.path.chmod(FILE_MODE)

    def _version(self) -> int | None:
        try:
            row = self.conn.execute("SELECT version FROM schema_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return row[0] if row else None

    def _retrying(self, action):
        deadline = time.monotonic() + LOCKED_RETRY_SECONDS
        delay = 0.005
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise OperationalError(f"the state database {self.path} failed: {exc}") from exc
                if time.monotonic() > deadline:
                    raise OperationalError(
                        f"the state database {self.path} stayed busy for {LOCKED_RETRY_SECONDS:.0f} s",
                        "another runai-lite process is holding it; try again") from exc
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
            except sqlite3.DatabaseError as exc:
                raise self._damaged(exc) from None

    def _damaged(self, exc: sqlite3.DatabaseError) -> BaseException:
        """A file SQLite cannot read as a database ("file is not a database", "database disk image
        is malformed") is named with the way out; other errors pass unchanged."""
        if type(exc) is not sqlite3.DatabaseError:
            return exc
        return OperationalError(f"the state database {self.path} is damaged ({exc})",
                                f"rebuild what can still be read (a backup is kept): {repair_command(self.path)}")

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Callers that may be retried must be idempotent up to the commit,
        which they are: nothing is visible before it."""
        self._retrying(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.conn
        except sqlite3.DatabaseError as exc:
            self._rollback()
            raise self._damaged(exc) from None
        except BaseException:
            self._rollback()
            raise
        self._retrying(lambda: self.conn.execute("COMMIT"))

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:
            pass  # a damaged file, or SQLite already rolled back on a full disk: nothing to undo

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot across several statements."""
        self._retrying(lambda: self.conn.execute("BEGIN"))
        try:
            yield self.conn
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        finally:
            try:
                self.conn.execute("COMMIT")
            except sqlite3.DatabaseError:
                pass  # nothing was written; a damaged file is reported above

    def data_version(self) -> int:
        """Changes whenever another connection commits: lets the daemon skip idle cycles."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    # ---------------------------------------------------------------- config

    def config(self, key: str, default: Any = None) -> Any:
        row = self._retrying(lambda: self.conn.execute("SELECT value FROM config WHERE key = ?", (key,)).fetchone())
        return json.loads(row[0]) if row else default

    def all_config(self) -> dict[str, Any]:
        rows = self._retrying(lambda: self.conn.execute("SELECT key, value FROM config").fetchall())
        return {r["key"]: json.loads(r["value"]) for r in rows}

    @staticmethod
    def set_config(conn: sqlite3.Connection, key: str, value: Any) -> None:
        conn.execute("INSERT INTO config (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (key, json.dumps(value)))

    # ---------------------------------------------------------------- jobs

    def _jobs(self, where: str, params: tuple = (), conn: sqlite3.Connection | None = None) -> list[JobRow]:
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs {where}"
        run = lambda: [JobRow(*row) for row in (conn or self.conn).execute(sql, params).fetchall()]  # noqa: E731
        return run() if conn is not None else self._retrying(run)

    def all_jobs(self, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Every job, deleted ones included."""
        return self._jobs("ORDER BY submitted_at, id", (), conn)

    def job(self, job_id: str, conn: sqlite3.Connection | None = None) -> JobRow | None:
        found = self._jobs("WHERE id = ?", (job_id,), conn)
        return found[0] if found else None

    def live_job(self, project: str, name: str, conn: sqlite3.Connection | None = None) -> JobRow | None:
        found = self._jobs("WHERE project = ? AND name = ? AND status != ?", (project, name, _DELETED), conn)
        return found[0] if found else None

    def live_jobs(self, project: str | None = None, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Jobs not deleted, of one project or of all, oldest first."""
        if project is None:
            return self._jobs("WHERE status != ? ORDER BY submitted_at", (_DELETED,), conn)
        return self._jobs("WHERE project = ? AND status != ? ORDER BY submitted_at", (project, _DELETED), conn)

    def live_jobs_among(self, job_ids: Sequence[str], conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Those of `job_ids` not deleted yet."""
        marks = ",".join("?" * len(job_ids))
        return self._jobs(f"WHERE id IN ({marks}) AND status != ?", (*job_ids, _DELETED), conn)

    def active_jobs(self, conn: sqlite3.Connection | None = None, project: str | None = None) -> list[JobRow]:
        """Pending (bound or not), Running and Preempted jobs, of one project or of all."""
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        if project is None:
            return self._jobs(f"WHERE status IN ({marks}) ORDER BY submitted_at, id", ACTIVE_STATUSES, conn)
        return self._jobs(f"WHERE project = ? AND status IN ({marks}) ORDER BY submitted_at, id",
                          (project, *ACTIVE_STATUSES), conn)

    def supervised_jobs(self, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Jobs whose attempt was started: Running, or Preempted and being stopped."""
        return self._jobs("WHERE status IN (?, ?) ORDER BY submitted_at, id", (_RUNNING, _PREEMPTED), conn)

    def finished_since(self, since: float, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Jobs that ended (succeeded, failed or were deleted) at `since` or later."""
        return self._jobs("WHERE finished_at >= ? ORDER BY finished_at", (since,), conn)

    def bound_jobs(self, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        """Pending jobs the scheduler gave an allocation (about to start), oldest first."""
        return self._jobs("WHERE status = ? AND allocation IS NOT NULL ORDER BY submitted_at, id", (_PENDING,), conn)

    def insert_job(self, conn: sqlite3.Connection, spec: JobSpec, user: str, runtime: str, now: float,
                   submitter: Submitter | None = None) -> JobRow:
        job_id = new_job_id()
        try:
            conn.execute(
                "INSERT INTO jobs (id, project, name, type, user, spec, runtime, status, submitted_at, pending_reason, "
                "submitter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, spec.project, spec.name, spec.type.value, user, spec.model_dump_json(), runtime,
                 JobStatus.PENDING.value, now, "waiting for the scheduler",
                 submitter.model_dump_json() if submitter is not None else None),
            )
        except sqlite3.IntegrityError:
            raise UserError(f"a job named {spec.name} already exists in project {spec.project}",
                            f"choose another name, or delete it first: runai delete job {spec.name} -p {spec.project}"
                            ) from None
        row = self.job(job_id, conn)
        assert row is not None
        return row

    @staticmethod
    def update_job(conn: sqlite3.Connection, job_id: str, **values: Any) -> None:
        assignments = ", ".join(f"{column} = ?" for column in values)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*values.values(), job_id))

    @staticmethod
    def add_event(conn: sqlite3.Connection, job_id: str, kind: str, message: str, now: float) -> None:
        conn.execute("INSERT INTO events (job_id, time, kind, message) VALUES (?, ?, ?, ?)",
                     (job_id, now, kind, message))

    @staticmethod
    def record_start(conn: sqlite3.Connection, row: JobRow, now: float, allocation: Allocation, job_env: str,
                     enforcement: str | None, memory_limit_mib: int | None) -> bool:
        """Attempt `row.attempts + 1` starts; False (nothing written) unless the job is still bound,
        not to be deleted and at the attempt the caller read."""
        cursor = conn.execute(
            "UPDATE jobs SET status = ?, attempts = ?, started_at = ?, pid = NULL, allocation = ?, job_env = ?, "
            "enforcement = ?, memory_limit_mib = ?, pending_reason = NULL, stop_sent_at = NULL, kill_sent_at = NULL, "
            "exit_code = NULL WHERE id = ? AND status = ? AND attempts = ? AND allocation IS NOT NULL "
            "AND delete_requested = 0",
            (_RUNNING, row.attempts + 1, now, allocation.model_dump_json(), job_env, enforcement, memory_limit_mib,
             row.id, _PENDING, row.attempts))
        if cursor.rowcount == 0:
            return False
        conn.execute("INSERT OR REPLACE INTO attempts (job_id, number, started_at) VALUES (?, ?, ?)",
                     (row.id, row.attempts + 1, now))
        return True

    @staticmethod
    def end_attempt(conn: sqlite3.Connection, job_id: str, number: int, now: float, exit_code: int | None,
                    outcome: AttemptEnd) -> None:
        conn.execute("UPDATE attempts SET ended_at = ?, exit_code = ?, outcome = ? WHERE job_id = ? AND number = ? "
                     "AND outcome IS NULL", (now, exit_code, outcome.value, job_id, number))

    def attempts(self, job_id: str, conn: sqlite3.Connection | None = None) -> tuple[Attempt, ...]:
        """The job's attempts, first first."""
        run = lambda: (conn or self.conn).execute(  # noqa: E731
            "SELECT number, started_at, ended_at, exit_code, outcome FROM attempts WHERE job_id = ? ORDER BY number",
            (job_id,)).fetchall()
        rows = run() if conn is not None else self._retrying(run)
        return tuple(Attempt(number=r["number"], started_at=r["started_at"], ended_at=r["ended_at"],
                             exit_code=r["exit_code"], outcome=AttemptEnd(r["outcome"]) if r["outcome"] else None)
                     for r in rows)

    @staticmethod
    def record_pid(conn: sqlite3.Connection, job_id: str, attempt: int, pid: int) -> None:
        conn.execute("UPDATE jobs SET pid = ? WHERE id = ? AND attempts = ?", (pid, job_id, attempt))

    @staticmethod
    def unstart(conn: sqlite3.Connection, job_id: str, attempt: int, reason: str) -> bool:
        """An attempt recorded as started never got a process: the job is bound again."""
        cursor = conn.execute(
            "UPDATE jobs SET status = ?, attempts = attempts - 1, pid = NULL, pending_reason = ? "
            "WHERE id = ? AND attempts = ? AND status = ?", (_PENDING, reason, job_id, attempt, _RUNNING))
        if cursor.rowcount == 0:
            return False
        conn.execute("DELETE FROM attempts WHERE job_id = ? AND number = ?", (job_id, attempt))
        return True

    @staticmethod
    def set_pending_reason(conn: sqlite3.Connection, job_id: str, reason: str, unbound_only: bool = False) -> bool:
        """A pending job's reason, if it changed; with `unbound_only`, only for a job still waiting
        for the scheduler (not bound, not to be deleted)."""
        if unbound_only:
            cursor = conn.execute(
                "UPDATE jobs SET pending_reason = ? WHERE id = ? AND status = ? AND allocation IS NULL "
                "AND delete_requested = 0 AND pending_reason IS NOT ?", (reason, job_id, _PENDING, reason))
        else:
            cursor = conn.execute("UPDATE jobs SET pending_reason = ? WHERE id = ? AND pending_reason IS NOT ?",
                                  (reason, job_id, reason))
        return cursor.rowcount > 0

    @staticmethod
    def purge_deleted(conn: sqlite3.Connection, finished_before: float) -> list[str]:
        """Remove the records (and events) of jobs deleted before `finished_before`; their ids."""
        ids = [r[0] for r in conn.execute("SELECT id FROM jobs WHERE status = ? AND finished_at < ?",
                                          (_DELETED, finished_before))]
        for job_id in ids:
            conn.execute("DELETE FROM events WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM attempts WHERE job_id = ?", (job_id,))
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        return ids

    def job_ids(self) -> set[str]:
        return {r[0] for r in self._retrying(lambda: self.conn.execute("SELECT id FROM jobs").fetchall())}

    def events(self, job_id: str) -> tuple[Event, ...]:
        rows = self._retrying(lambda: self.conn.execute(
            "SELECT time, kind, message FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall())
        return tuple(Event(time=r["time"], kind=r["kind"], message=r["message"]) for r in rows)

    # ---------------------------------------------------------------- projects

    def projects(self, conn: sqlite3.Connection | None = None) -> list[ProjectRow]:
        run = lambda: [ProjectRow(name=r["name"], deserved_gpus=r["deserved_gpus"]) for r in  # noqa: E731
                       (conn or self.conn).execute("SELECT name, deserved_gpus FROM projects ORDER BY name")]
        return run() if conn is not None else self._retrying(run)

    @staticmethod
    def project_exists(conn: sqlite3.Connection, name: str) -> bool:
        return conn.execute("SELECT 1 FROM projects WHERE name = ?", (name,)).fetchone() is not None

    @staticmethod
    def insert_project(conn: sqlite3.Connection, name: str, deserved_gpus: float, now: float) -> None:
        conn.execute("INSERT INTO projects (name, deserved_gpus, created_at) VALUES (?, ?, ?)",
                     (name, deserved_gpus, now))

    @staticmethod
    def delete_project(conn: sqlite3.Connection, name: str) -> None:
        conn.execute("DELETE FROM projects WHERE name = ?", (name,))

    # ---------------------------------------------------------------- GPUs and MIG layout

    def gpus(self, node: str, conn: sqlite3.Connection | None = None) -> list[GpuRow]:
        """The node's GPUs as the daemon last published them from its driver."""
        run = lambda: [GpuRow.from_row(r) for r in (conn or self.conn).execute(  # noqa: E731
            "SELECT * FROM gpus WHERE node = ? ORDER BY gpu_index", (node,))]
        return run() if conn is not None else self._retrying(run)

    @staticmethod
    def publish_gpus(conn: sqlite3.Connection, node: str, gpus: Sequence[GpuRow]) -> None:
        """The node's GPUs are exactly `gpus` now."""
        conn.execute(f"DELETE FROM gpus WHERE node = ? AND gpu_index NOT IN ({','.join('?' * len(gpus))})",
                     (node, *[g.gpu_index for g in gpus]))
        for g in gpus:
            conn.execute(
                "INSERT OR REPLACE INTO gpus (node, gpu_index, uuid, model, memory_mib, memory_slices, mig_capable, "
                "mig_enabled, simulated, dynamic_mig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (node, g.gpu_index, g.uuid, g.model, g.memory_mib, g.memory_slices, int(g.mig_capable),
                 int(g.mig_enabled), int(g.simulated), int(g.dynamic_mig)))

    @staticmethod
    def set_mig_enabled(conn: sqlite3.Connection, node: str, index: int, enabled: bool) -> None:
        conn.execute("UPDATE gpus SET mig_enabled = ? WHERE node = ? AND gpu_index = ? AND mig_enabled != ?",
                     (int(enabled), node, index, int(enabled)))

    @staticmethod
    def set_dynamic_mig(conn: sqlite3.Connection, node: str, index: int, enabled: bool) -> None:
        """Mark the GPU's partitioning as the scheduler's (or not). Its partitions stay: on a dynamic
        GPU they are the scheduler's (idle until used), otherwise static ones it may use but never
        changes."""
        conn.execute("UPDATE gpus SET dynamic_mig = ? WHERE node = ? AND gpu_index = ?", (int(enabled), node, index))
        old, new = (PartitionState.STATIC, PartitionState.READY) if enabled else (PartitionState.READY,
                                                                                  PartitionState.STATIC)
        conn.execute("UPDATE mig_layout SET state = ? WHERE node = ? AND gpu_index = ? AND state IN (?, ?)",
                     (new, node, index, old, new))

    def node_row(self, node: str, conn: sqlite3.Connection | None = None) -> NodeRow:
        run = lambda: (conn or self.conn).execute(  # noqa: E731
            "SELECT name, cpu_milli, memory_mib, node_type FROM nodes WHERE name = ?", (node,)).fetchone()
        row = run() if conn is not None else self._retrying(run)
        return NodeRow(*row) if row else NodeRow(node)

    @staticmethod
    def set_node_row(conn: sqlite3.Connection, row: NodeRow) -> None:
        conn.execute("INSERT INTO nodes (name, cpu_milli, memory_mib, node_type) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET cpu_milli = excluded.cpu_milli, "
                     "memory_mib = excluded.memory_mib, node_type = excluded.node_type",
                     (row.name, row.cpu_milli, row.memory_mib, row.node_type))

    def mig_layout(self, node: str, conn: sqlite3.Connection | None = None) -> list[PartitionRow]:
        run = lambda: [PartitionRow.from_row(r) for r in (conn or self.conn).execute(  # noqa: E731
            "SELECT * FROM mig_layout WHERE node = ? ORDER BY gpu_index, start", (node,))]
        return run() if conn is not None else self._retrying(run)

    @staticmethod
    def forget_partitions(conn: sqlite3.Connection, node: str, index: int) -> None:
        conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ?", (node, index))

    @staticmethod
    def put_partition(conn: sqlite3.Connection, part: PartitionRow) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO mig_layout (node, gpu_index, start, profile, size, state, uuid, for_job, last_job) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (part.node, part.gpu_index, part.start, part.profile, part.size, part.state, part.uuid, part.for_job,
             part.last_job))

    @staticmethod
    def delete_partition(conn: sqlite3.Connection, part: PartitionRow) -> None:
        conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ? AND start = ? AND profile = ?",
                     (part.node, part.gpu_index, part.start, part.profile))

    @staticmethod
    def partition_ready(conn: sqlite3.Connection, part: PartitionRow, uuid: str) -> None:
        conn.execute("UPDATE mig_layout SET state = ?, uuid = ? WHERE node = ? AND gpu_index = ? AND start = ? "
                     "AND profile = ?", (PartitionState.READY, uuid, part.node, part.gpu_index, part.start,
                                         part.profile))

    @staticmethod
    def partition_to_destroy(conn: sqlite3.Connection, node: str, index: int, start: int, profile: str) -> bool:
        cursor = conn.execute(
            "UPDATE mig_layout SET state = ? WHERE node = ? AND gpu_index = ? AND start = ? AND profile = ? "
            "AND state != ?", (PartitionState.DESTROYING, node, index, start, profile, PartitionState.DESTROYING))
        return cursor.rowcount > 0

    @staticmethod
    def partition_to_create(conn: sqlite3.Connection, node: str, index: int, start: int, profile: str, size: int,
                            for_job: str | None) -> None:
        """To be made for `for_job`; one that exists already (has a UUID) stays ready."""
        conn.execute(
            "INSERT INTO mig_layout (node, gpu_index, start, profile, size, state, for_job) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(node, gpu_index, start, profile) DO UPDATE SET for_job = excluded.for_job, "
            "state = CASE WHEN uuid IS NULL THEN ? ELSE ? END",
            (node, index, start, profile, size, PartitionState.CREATING, for_job, PartitionState.CREATING,
             PartitionState.READY))

    @staticmethod
    def partition_bound(conn: sqlite3.Connection, node: str, index: int, start: int, profile: str, job_id: str) -> None:
        conn.execute("UPDATE mig_layout SET last_job = ? WHERE node = ? AND gpu_index = ? AND start = ? AND profile = ?",
                     (job_id, node, index, start, profile))


# ---------------------------------------------------------------------------------- recovery

RECOVERY_PROBES = 24  # past an unreadable page, look up to 2**24 rowids ahead before giving up on a table


def recover_into(store: Store, damaged_path: Path) -> tuple[dict[str, int], dict[str, str]]:
    """Copy every row that can still be read from the damaged database at `damaged_path` into
    `store` (a fresh one), table by table, with the columns both schemas have. Returns the rows
    recovered per table, and why reading stopped short where it did.

    Rows are read in rowid order; past a page that cannot be read the scan resumes at the next
    rowid that can be reached (probing further and further ahead). The damaged file is read past a
    header that promises more pages than the file has (a truncated file), as sqlite3's `.recover`
    does, and never written."""
    tables = [row[0] for row in store.conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'schema_version' ORDER BY name")]
    recovered: dict[str, int] = {}
    unreadable: dict[str, str] = {}
    try:
        damaged = sqlite3.connect(damaged_path, isolation_level=None)
        damaged.execute("PRAGMA writable_schema = ON")
        damaged.execute("PRAGMA query_only = ON")
        damaged.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        return dict.fromkeys(tables, 0), dict.fromkeys(tables, str(exc))
    try:
        with store.write() as conn:
            for table in tables:
                columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
                rows, why = _readable_rows(damaged, table, columns)
                for row in rows:
                    conn.execute(f"INSERT OR IGNORE INTO {table} ({', '.join(row)}) "
                                 f"VALUES ({', '.join('?' * len(row))})", list(row.values()))
                recovered[table] = len(rows)
                if why:
                    unreadable[table] = why
    finally:
        damaged.close()
    return recovered, unreadable


def _readable_rows(db: sqlite3.Connection, table: str, columns: list[str]) -> tuple[list[dict], str | None]:
    try:
        present = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError as exc:
        return [], str(exc)
    if not present:
        return [], "the table is missing"
    names = [name for name in columns if name in present]
    select = f"SELECT rowid, {', '.join(names)} FROM {table} WHERE rowid > ? ORDER BY rowid"
    rows: list[dict] = []
    last, floor, why = -(2**63), -(2**63), None
    while True:
        try:
            for found in db.execute(select, (last,)):
                last = found[0]
                rows.append(dict(zip(names, found[1:], strict=True)))
            return rows, why
        except sqlite3.DatabaseError as exc:
            why = str(exc)
            # Probe past the last row read, or past the last place the scan resumed when it failed
            # again before reading anything: each resume is further on, so this ends.
            resumed = _next_readable(db, table, max(last, floor))
            if resumed is None:
                return rows, why
            floor, last = resumed, resumed - 1


def _next_readable(db: sqlite3.Connection, table: str, after: int) -> int | None:
    """A rowid past `after` from which the table can be read again, probing 1, 2, 4, ... ahead."""
    base = max(after, 0)
    for step in range(RECOVERY_PROBES):
        try:
            row = db.execute(f"SELECT rowid FROM {table} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                             (base + 2**step,)).fetchone()
        except sqlite3.DatabaseError:
            continue
        return row[0] if row else None
    return None
