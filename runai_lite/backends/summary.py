"""`JobSummary`: what one row of `runai list` shows of a job, as plain values.

A backend that can read these more cheaply than whole `JobInfo` records (the embedded one, from its
database without building a pydantic model per job) offers them through `Backend.job_summaries`;
any other makes them from its records with `JobInfo.summary`. Either way the table is the same.
"""

# Annotations are not postponed here: a named tuple compiles each postponed field annotation
# (typing.ForwardRef) when the module loads, ~0.2 ms apiece on every command.

from typing import NamedTuple

from ..kinds import JobStatus, JobType


class JobSummary(NamedTuple):
    name: str
    project: str
    status: JobStatus
    type: JobType
    image: str
    user: str
    submitted_at: float
    node: str | None  # where it runs, or ran once it ended; None while it waits
    requested: str  # the GPU request as typed: `1`, `0.5`, `10GB`, `2g.10gb`; `0` for none
    allocated_gpus: float | None  # None while it holds nothing
    allocated_mig_profile: str | None  # the MIG partition's profile, when it holds one

    @classmethod
    def from_json(cls, row: list) -> "JobSummary":
        """A row as it comes over a daemon's socket, where a named tuple travels as a JSON array."""
        name, project, status, job_type, *rest = row
        return cls(name, project, JobStatus(status), JobType(job_type), *rest)
