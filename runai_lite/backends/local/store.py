"""The embedded mode's state: one SQLite database in WAL mode, shared by every CLI process and the
daemon.

Every write is one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so two writers
queue on `busy_timeout` instead of deadlocking on a lock upgrade, and a lock that stays busy past
that is retried here rather than reaching a user as "database is locked". Commits are
`synchronous=FULL`, so a submission is on disk before `submit` returns.

The schema is versioned (`schema_version`); `MIGRATIONS[n]` takes version n to n + 1.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ...errors import OperationalError, UserError
from ...model import Allocation, JobSpec, JobStatus, JobType, Submitter
from ..api import Event, JobInfo
from .paths import FILE_MODE, open_private

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
]
SCHEMA_VERSION = len(MIGRATIONS)

BUSY_TIMEOUT_MS = 5000
LOCKED_RETRY_SECONDS = 60.0
ACTIVE_STATUSES = (JobStatus.PENDING.value, JobStatus.RUNNING.value, JobStatus.PREEMPTED.value)


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

    def __post_init__(self) -> None:
        if isinstance(self.submitter, str):  # the column's JSON, as read from the database
            object.__setattr__(self, "submitter", Submitter.model_validate_json(self.submitter))

    @property
    def job_spec(self) -> JobSpec:
        return JobSpec.model_validate_json(self.spec)

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    @property
    def job_type(self) -> JobType:
        return JobType(self.type)

    @property
    def alloc(self) -> Allocation | None:
        return Allocation.model_validate_json(self.allocation) if self.allocation else None

    @property
    def key(self) -> str:
        return f"{self.project}/{self.name}"

    @property
    def bound(self) -> bool:
        """Placed by the scheduler, process not started yet."""
        return self.status == JobStatus.PENDING and self.allocation is not None

    @property
    def stopping(self) -> bool:
        """A process is being stopped (preemption or delete) and has not been seen to exit."""
        return self.pid is not None and (self.status == JobStatus.PREEMPTED or bool(self.delete_requested))

    def env(self) -> dict[str, str]:
        return json.loads(self.job_env) if self.job_env else {}

    def to_info(self, events: tuple[Event, ...] = (), simulated: bool = False) -> JobInfo:
        """What commands show. A job shows an allocation (and its enforcement) only while its
        process holds it, and a start time only once it runs or ran: a bound job about to start,
        or one requeued after a preemption, is Pending with neither."""
        spec = self.job_spec
        holding = self.status in (JobStatus.RUNNING, JobStatus.PREEMPTED)
        pending = self.status == JobStatus.PENDING
        return JobInfo(
            name=self.name, project=self.project, type=self.job_type, status=self.job_status, image=spec.image,
            user=self.user, command=spec.command, working_dir=spec.working_dir, submitted_at=self.submitted_at,
            started_at=None if pending else self.started_at, finished_at=self.finished_at, request=spec.request,
            allocation=self.alloc if holding else None, pending_reason=self.pending_reason if pending else None,
            exit_code=self.exit_code, attempts=self.attempts, backoff_limit=spec.backoff_limit,
            enforcement=self.enforcement if holding or self.job_status.terminal else None,
            memory_limit_mib=self.memory_limit_mib if holding or self.job_status.terminal else None,
            simulated=simulated and holding, events=events,
        )


_JOB_COLUMNS = ", ".join(f.name for f in fields(JobRow))


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

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. Callers that may be retried must be idempotent up to the commit,
        which they are: nothing is visible before it."""
        self._retrying(lambda: self.conn.execute("BEGIN IMMEDIATE"))
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self._retrying(lambda: self.conn.execute("COMMIT"))

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot across several statements."""
        self._retrying(lambda: self.conn.execute("BEGIN"))
        try:
            yield self.conn
        finally:
            self.conn.execute("COMMIT")

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

    def jobs(self, where: str = "", params: tuple = (), conn: sqlite3.Connection | None = None) -> list[JobRow]:
        sql = f"SELECT {_JOB_COLUMNS} FROM jobs {where}"
        run = lambda: [JobRow(*row) for row in (conn or self.conn).execute(sql, params).fetchall()]  # noqa: E731
        return run() if conn is not None else self._retrying(run)

    def job(self, job_id: str, conn: sqlite3.Connection | None = None) -> JobRow | None:
        found = self.jobs("WHERE id = ?", (job_id,), conn)
        return found[0] if found else None

    def live_job(self, project: str, name: str, conn: sqlite3.Connection | None = None) -> JobRow | None:
        found = self.jobs("WHERE project = ? AND name = ? AND status != 'Deleted'", (project, name), conn)
        return found[0] if found else None

    def active_jobs(self, conn: sqlite3.Connection | None = None) -> list[JobRow]:
        marks = ",".join("?" * len(ACTIVE_STATUSES))
        return self.jobs(f"WHERE status IN ({marks}) ORDER BY submitted_at, id", ACTIVE_STATUSES, conn)

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

    def events(self, job_id: str) -> tuple[Event, ...]:
        rows = self._retrying(lambda: self.conn.execute(
            "SELECT time, kind, message FROM events WHERE job_id = ? ORDER BY seq", (job_id,)).fetchall())
        return tuple(Event(time=r["time"], kind=r["kind"], message=r["message"]) for r in rows)

    # ---------------------------------------------------------------- projects

    def projects(self) -> list[sqlite3.Row]:
        return self._retrying(lambda: self.conn.execute(
            "SELECT name, deserved_gpus FROM projects ORDER BY name").fetchall())

    # ---------------------------------------------------------------- GPUs and MIG layout

    def gpus(self, node: str, conn: sqlite3.Connection | None = None) -> list[sqlite3.Row]:
        """The node's GPUs as the daemon last published them from its driver."""
        run = lambda: (conn or self.conn).execute(  # noqa: E731
            "SELECT * FROM gpus WHERE node = ? ORDER BY gpu_index", (node,)).fetchall()
        return run() if conn is not None else self._retrying(run)

    def mig_layout(self, node: str, conn: sqlite3.Connection | None = None) -> list[sqlite3.Row]:
        run = lambda: (conn or self.conn).execute(  # noqa: E731
            "SELECT * FROM mig_layout WHERE node = ? ORDER BY gpu_index, start", (node,)).fetchall()
        return run() if conn is not None else self._retrying(run)
