"""The interface between the CLI and a backend, and the records it returns.

Both backends return the same records, so every command prints the same shapes (`-o json`
included) on the embedded default and on Kubernetes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from ..model import (MILLI, Allocation, AllocationKind, GpuRequest, JobSpec, JobStatus, JobType, PortMapping, PvcMount,
                     ServiceType, VolumeMount)
from ..submission.flags import SubmitFlags, SubmitReceipt
from .attempts import Attempt, AttemptEnd, counts
from .summary import JobSummary


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)


def rfc3339(seconds: float | None) -> str | None:
    """A time for scripts: RFC 3339 in UTC, to the millisecond (`2026-12-03T07:31:38.123Z`)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Event(_Record):
    """Something that happened to a job: Submitted, Bound, Started, Preempted, Requeued,
    PartitionCreated, PartitionDestroyed, Exited, Retrying, BackoffLimitExceeded, NotRetried,
    Suspended, Resumed, Pending, Deleted."""

    time: float
    kind: str
    message: str

    def to_json(self) -> dict:
        return {"time": rfc3339(self.time), "kind": self.kind, "message": self.message}


class JobOptions(_Record):
    """What a job asked for beyond its GPUs: host resources, storage, network, placement and
    lifetime (`runai submit`'s flags of those groups; `JobSpec`'s fields of the same names)."""

    cpu_milli: int = 0
    memory_mib: int = 0
    cpu_limit_milli: int = 0
    memory_limit_mib: int = 0
    volumes: tuple[VolumeMount, ...] = ()
    pvcs: tuple[PvcMount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    service_type: ServiceType | None = None
    labels: tuple[tuple[str, str], ...] = ()
    node_type: str | None = None
    ttl_after_finish_s: int | None = None
    large_shm: bool = False
    completions: int = 1
    parallelism: int = 1

    @classmethod
    def of(cls, spec: JobSpec) -> JobOptions:
        return cls(**{name: getattr(spec, name) for name in cls.model_fields})

    def to_json(self) -> dict:
        shape = self.model_dump(mode="json")
        shape["labels"] = dict(self.labels)
        return shape


class JobInfo(_Record):
    name: str
    project: str
    type: JobType
    status: JobStatus
    image: str
    user: str = ""
    command: tuple[str, ...] = ()
    working_dir: str | None = None
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    request: GpuRequest | None = None
    allocation: Allocation | None = None
    pending_reason: str | None = None
    exit_code: int | None = None  # a finished job's; the attempts' own are in `attempt_history`
    attempts: int = 0
    backoff_limit: int = 0
    attempt_history: tuple[Attempt, ...] = ()  # oldest first; may leave out attempts a backend no longer knows
    enforcement: str | None = None  # hami-core | mps | framework | none
    memory_limit_mib: int | None = None
    simulated: bool = False
    events: tuple[Event, ...] = ()
    options: JobOptions = JobOptions()
    ran_on: str | None = None  # the node of its last attempt, once the job has ended

    @property
    def node(self) -> str | None:
        """Where it runs, or where it last ran once it ended (None while it waits)."""
        return self.allocation.node if self.allocation else self.ran_on

    @property
    def gpus_requested(self) -> str:
        """The request as typed (`0.5`, `2`, `10GB`, `500Mi`, `2g.10gb`; `0` for none)."""
        return self.request.describe() if self.request else "0"

    @property
    def gpus_requested_count(self) -> float | None:
        """GPUs asked for as a number (whole or a fraction), None when asked by memory or profile."""
        if self.request is None:
            return 0
        if self.request.gpus is not None:
            return self.request.gpus
        return self.request.fraction

    @property
    def gpus_allocated(self) -> float:
        return self.allocation.gpus if self.allocation else 0.0

    @property
    def last_ended(self) -> Attempt | None:
        """The latest attempt that ended."""
        return next((a for a in reversed(self.attempt_history) if a.outcome is not None), None)

    def attempt_counts(self) -> dict[AttemptEnd, int]:
        return counts(self.attempt_history)

    def summary(self) -> JobSummary:
        alloc = self.allocation
        return JobSummary(
            name=self.name, project=self.project, status=self.status, type=self.type, image=self.image,
            user=self.user, submitted_at=self.submitted_at, node=self.node, requested=self.gpus_requested,
            allocated_gpus=alloc.gpus if alloc else None,
            allocated_mig_profile=alloc.mig_profile if alloc and alloc.kind == AllocationKind.MIG else None)

    def to_json(self) -> dict:
        """The shape of one element of `runai list -o json` (and of `runai describe job -o json`,
        which adds `events`)."""
        return {
            "name": self.name,
            "project": self.project,
            "type": self.type.display,
            "status": self.status.value,
            "node": self.node,
            "image": self.image,
            "user": self.user,
            "command": list(self.command),
            "submitted_at": rfc3339(self.submitted_at),
            "started_at": rfc3339(self.started_at),
            "finished_at": rfc3339(self.finished_at),
            "requested": self.gpus_requested,
            "gpus_requested": self.gpus_requested_count,
            "gpu_memory_requested_bytes": self.request.memory_bytes if self.request else None,
            "mig_profile_requested": self.request.mig_profile if self.request else None,
            "gpus_allocated": self.gpus_allocated,
            "allocation": self.allocation.to_json() if self.allocation else None,
            "pending_reason": self.pending_reason,
            "exit_code": self.exit_code,
            "attempts": self.attempts,
            "enforcement": self.enforcement,
            "memory_limit_mib": self.memory_limit_mib,
            "simulated": self.simulated,
        }


def attempt_json(attempt: Attempt) -> dict:
    """An attempt as `describe job -o json` shows it (times as RFC 3339, like every time there)."""
    return {"number": attempt.number, "started_at": rfc3339(attempt.started_at),
            "ended_at": rfc3339(attempt.ended_at), "exit_code": attempt.exit_code,
            "outcome": attempt.outcome.value if attempt.outcome else None}


class GpuProcess(_Record):
    """A process of a job on one of its GPU devices, as the GPU driver reports it."""

    pid: int
    device: str  # the GPU or MIG device UUID
    used_memory_mib: int | None = None  # None: the driver does not say (simulated GPUs, some drivers)

    def to_json(self) -> dict:
        return self.model_dump()


class JobUsage(_Record):
    """One row of `runai top job`: a job, what it was given, and what its processes use where the
    driver could be asked (`measured`: False on Kubernetes, for a job not running, or when the query
    failed, with `note` saying why)."""

    job: JobInfo
    processes: tuple[GpuProcess, ...] = ()
    measured: bool = False
    note: str | None = None

    @property
    def used_memory_mib(self) -> int | None:
        """The GPU memory its processes use, when the driver reported it for every one."""
        used = [p.used_memory_mib for p in self.processes]
        return sum(used) if self.measured and None not in used else None  # type: ignore[arg-type]

    def to_json(self) -> dict:
        job = self.job
        return {
            "name": job.name, "project": job.project, "status": job.status.value, "node": job.node,
            "requested": job.gpus_requested, "allocation": job.allocation.to_json() if job.allocation else None,
            "gpu_memory_limit_mib": job.memory_limit_mib, "measured": self.measured,
            "gpu_memory_used_mib": self.used_memory_mib,
            "processes": [p.to_json() for p in self.processes], "note": self.note,
        }


class MigInstanceView(_Record):
    profile: str
    start: int
    size: int
    uuid: str | None
    state: Literal["used", "idle", "creating", "destroying"]
    job: str | None = None  # "project/name"

    def to_json(self) -> dict:
        return {"profile": self.profile, "placement": {"start": self.start, "size": self.size},
                "uuid": self.uuid, "state": self.state, "job": self.job}


class FractionView(_Record):
    job: str  # "project/name"
    share_milli: int

    def to_json(self) -> dict:
        return {"job": self.job, "share": self.share_milli / MILLI}


class GpuView(_Record):
    index: int
    uuid: str
    model: str
    memory_mib: int
    simulated: bool = False
    dynamic_mig: bool = False
    mig_enabled: bool = False
    memory_slices: int = 0  # 0 when the model has no MIG
    mig_instances: tuple[MigInstanceView, ...] = ()
    fractions: tuple[FractionView, ...] = ()
    whole_job: str | None = None  # a job holding the whole GPU
    enforcement: str | None = None

    def to_json(self) -> dict:
        return {
            "index": self.index, "uuid": self.uuid, "model": self.model, "memory_mib": self.memory_mib,
            "simulated": self.simulated, "dynamic_mig": self.dynamic_mig, "mig_enabled": self.mig_enabled,
            "mig_instances": [m.to_json() for m in self.mig_instances],
            "fractions": [f.to_json() for f in self.fractions],
            "whole_job": self.whole_job, "enforcement": self.enforcement,
        }


class NodeView(_Record):
    name: str
    gpus: tuple[GpuView, ...] = ()
    notes: tuple[str, ...] = ()  # why GPUs of the node are not shown (another daemon owns them)

    def to_json(self) -> dict:
        return {"name": self.name, "gpus": [g.to_json() for g in self.gpus], "notes": list(self.notes)}


class ProjectInfo(_Record):
    name: str
    deserved_gpus: float
    allocated_gpus: float = 0.0
    running: int = 0
    pending: int = 0

    def to_json(self) -> dict:
        return self.model_dump()


class Backend(Protocol):
    """What the CLI needs from wherever runai-lite runs. Errors: `UserError`/`NotFoundError`
    for mistakes (exit 2), `OperationalError` for failures (exit 1)."""

    name: str

    def current_user(self) -> str: ...

    def submit(self, spec: JobSpec) -> JobInfo: ...

    def submit_flags(self, flags: SubmitFlags) -> SubmitReceipt:
        """`runai submit`: check the flags as typed, build the spec and submit it
        (`backends.submission.submit_in_process` does it in this process)."""
        ...

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        """Jobs of one project, or of all projects when `project` is None."""
        ...

    def job_summaries(self, project: str | None) -> list[JobSummary]:
        """What `runai list` shows of the same jobs (`JobInfo.summary` of each, read as cheaply as the
        backend can)."""
        ...

    def get_job(self, project: str, name: str) -> JobInfo: ...

    def delete_jobs(self, project: str, names: list[str] | None) -> list[str]:
        """Delete the named jobs (all of the project's jobs when `names` is None); returns names."""
        ...

    def suspend_job(self, project: str, name: str) -> JobInfo:
        """Stop the job without losing it and free what it holds (Suspended); refused (exit 2) for a
        finished or already suspended job."""
        ...

    def resume_job(self, project: str, name: str) -> JobInfo:
        """Queue a suspended job again (Pending; its attempt history kept); refused (exit 2) for a
        job that is not suspended."""
        ...

    def port_opener(self, project: str, name: str, port: int) -> Callable[[], Any]:
        """For `runai port-forward`: a function that opens a new connection (a socket) to the
        running job's `port` each time it is called. Refused (exit 2) for a job not running."""
        ...

    def top_jobs(self, project: str | None) -> list[JobUsage]:
        """Unfinished jobs of one project (or all), with their GPU processes where the driver
        reports them."""
        ...

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None,
             attempt: int | None = None) -> Iterator[str]:
        """The job's output: all of it, with a `--- attempt N (why) ---` line before each retry's, or
        with `attempt` only that attempt's (refused, exit 2, when the job has no such attempt)."""
        ...

    def exec(self, project: str, name: str, argv: list[str], tty: bool = False, stdin: bool = False) -> int:
        """Run `argv` in the job's environment, with a terminal of its own when `tty`, reading this
        process's input when `stdin` (else its input is closed); returns its exit code."""
        ...

    def list_projects(self) -> list[ProjectInfo]: ...

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo: ...

    def delete_project(self, name: str) -> None: ...

    def list_nodes(self) -> list[NodeView]: ...

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        """Mark a node's GPUs dynamic-MIG (or unmark), refusing with a hint when MIG mode is off or
        when unmarking would strand running MIG jobs."""
        ...

    def set_node_type(self, node: str, node_type: str | None) -> None:
        """Give a node Run:ai's node type (`run.ai/type`, what `runai submit --node-type` selects), or
        take it away with None."""
        ...
