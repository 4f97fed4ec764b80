"""The plain kinds and name rules every layer shares: job types and statuses, request and allocation
kinds, Service types, what a name or a word of a command may be.

No pydantic: a command that only reads and shows (`runai list`) works with these alone, before
any model is built; `model.py` builds its records on them and offers them under its own name too.
"""

from __future__ import annotations

import re
from enum import StrEnum

from .errors import UserError

MILLI = 1000  # one whole GPU in share_milli

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_MAX = 63


def dns1123_problem(name: str) -> str | None:
    """Why `name` is not a Kubernetes DNS-1123 label, or None when it is one."""
    if not name:
        return "it is empty"
    if len(name) > DNS1123_MAX:
        return f"it is {len(name)} characters long (at most {DNS1123_MAX})"
    if not DNS1123_LABEL.match(name):
        return "it must consist of lower-case letters, digits and '-', and start and end with a letter or digit"
    return None


def check_name(what: str, name: str, example: str) -> None:
    """Job and project names are DNS-1123 labels (they become Kubernetes names): `UserError` if not."""
    problem = dns1123_problem(name)
    if problem:
        raise UserError(f"invalid {what} {name!r}: {problem}", f"use a name such as {example}")


def text_problem(text: str) -> str | None:
    """Why `text` cannot be a word of a command, an environment entry or a path, or None."""
    if "\x00" in text:
        return "it contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "it contains bytes that are not UTF-8 text"
    return None


# --------------------------------------------------------------------------------------------
# Kinds


class JobType(StrEnum):
    """Run:ai job types and their priorities (train 50, interactive-preemptible 75, build 100)."""

    TRAIN = "train"
    INTERACTIVE_PREEMPTIBLE = "interactive-preemptible"
    INTERACTIVE = "interactive"

    @property
    def priority(self) -> int:
        return {"train": 50, "interactive-preemptible": 75, "interactive": 100}[self.value]

    @property
    def preemptible(self) -> bool:
        return self is not JobType.INTERACTIVE

    @property
    def display(self) -> str:
        return {"train": "Train", "interactive-preemptible": "Interactive-Preemptible", "interactive": "Interactive"}[
            self.value
        ]

    @property
    def priority_class(self) -> str:
        """The Kubernetes PriorityClass name (Run:ai calls the interactive class `build`)."""
        return {"train": "train", "interactive-preemptible": "interactive-preemptible", "interactive": "build"}[
            self.value
        ]


class JobStatus(StrEnum):
    """Lifecycle of a job. `Preempted` is transient: the victim is stopping and is then requeued
    as `Pending` (training jobs are never lost to a preemption). `Suspended` (`runai suspend`)
    holds nothing and waits, unscheduled, for `runai resume`, which makes it `Pending` again."""

    PENDING = "Pending"
    RUNNING = "Running"
    PREEMPTED = "Preempted"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETED = "Deleted"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DELETED)

    @property
    def holds_resources(self) -> bool:
        return self in (JobStatus.RUNNING, JobStatus.PREEMPTED)


class RequestKind(StrEnum):
    """How a job asks for GPUs (`runai submit --gpu 2 | --gpu 0.5 | --gpu-memory 10GB | --mig-profile`)."""

    GPUS = "gpus"  # whole GPUs
    FRACTION = "fraction"
    MEMORY = "memory"
    MIG = "mig"


class AllocationKind(StrEnum):
    """What a job got: whole GPUs (also a job without GPU, with no GPU index), a share of one GPU
    (a fraction or an amount of memory), or a MIG partition."""

    GPU = "gpu"
    FRACTION = "fraction"
    MIG = "mig"


class ServiceType(StrEnum):
    """The Kubernetes Service type `--service-type` asks for (Run:ai's `portforward` is ClusterIP:
    reachable through `runai port-forward` only)."""

    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


def request_text(gpus: int | None, fraction: float | None, memory_bytes: int | None, mig_profile: str | None) -> str:
    """A GPU request as the researcher typed it: `2`, `0.25`, `10GB`, `500Mi`, `2g.10gb`; `0` for a
    job that asked for no GPU."""
    if gpus is not None:
        return str(gpus)
    if fraction is not None:
        return f"{fraction:g}"
    if memory_bytes is not None:
        from .units import format_size_as_typed

        return format_size_as_typed(memory_bytes)
    return mig_profile if mig_profile is not None else "0"


def allocated_gpus(gpu_count: int, share_milli: int) -> float:
    """GPUs an allocation holds, as `runai list` shows them."""
    return gpu_count * share_milli / MILLI
