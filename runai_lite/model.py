"""Types shared by every layer: requests, jobs, nodes, GPUs, MIG instances, snapshots and plans.

This module imports nothing of the project but `kinds`, `units` and `errors`; everything else imports it.
Shares of a GPU are kept as integer thousandths (`share_milli`), so that "the shares on one GPU sum
to at most 1" is exact arithmetic, as in the openb trace's `gpu_milli`.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from .kinds import (  # noqa: F401 - every layer finds them here too
    MILLI,
    AllocationKind,
    JobStatus,
    JobType,
    RequestKind,
    ServiceType,
    allocated_gpus,
    dns1123_problem,
    request_text,
    text_problem,
)
from .units import MiB, format_mib

# Validation context of records read back from the store, checked once when they were submitted:
# what is there only to refuse bad input is not checked again on every read.
STORED = "stored"
MIN_GPU_MEMORY_BYTES = 100 * 10**6  # --gpu-memory below 100MB is a mistake, not a request


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


# --------------------------------------------------------------------------------------------
# Jobs


class GpuRequest(_Frozen):
    """What a job asks for: exactly one of whole GPUs, a fraction, an amount of memory, a MIG profile."""

    gpus: int | None = Field(default=None, ge=1, le=64)
    fraction: float | None = Field(default=None, gt=0, lt=1)
    memory_bytes: int | None = Field(default=None, ge=MIN_GPU_MEMORY_BYTES)
    mig_profile: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GpuRequest:
        given = [f for f in ("gpus", "fraction", "memory_bytes", "mig_profile") if getattr(self, f) is not None]
        if len(given) != 1:
            raise ValueError(f"a GPU request needs exactly one of gpus, fraction, memory_bytes, mig_profile; got {given}")
        return self

    @property
    def kind(self) -> RequestKind:
        if self.gpus is not None:
            return RequestKind.GPUS
        if self.fraction is not None:
            return RequestKind.FRACTION
        if self.memory_bytes is not None:
            return RequestKind.MEMORY
        return RequestKind.MIG

    @property
    def fraction_milli(self) -> int:
        """The share of a `--gpu f` request in thousandths, rounded up (0.3333 → 334)."""
        assert self.fraction is not None
        return min(MILLI - 1, max(1, -int(-self.fraction * MILLI // 1)))

    def describe(self) -> str:
        """As the researcher typed it: `2`, `0.25`, `10GB`, `500Mi`, `2g.10gb`."""
        return request_text(self.gpus, self.fraction, self.memory_bytes, self.mig_profile)


LABEL_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_NAME_MAX = 63
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_SUBDOMAIN_MAX = 253


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a Kubernetes label value (empty is one), or None."""
    if len(value) > LABEL_NAME_MAX:
        return f"it is {len(value)} characters long (at most {LABEL_NAME_MAX})"
    if value and not LABEL_NAME.match(value):
        return "it must consist of letters, digits, '-', '_' and '.', and start and end with a letter or digit"
    return None


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a Kubernetes label key (`[prefix/]name`), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > DNS1123_SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.match(prefix)):
        return f"its prefix {prefix!r} must be a DNS subdomain (lower-case letters, digits, '-' and '.')"
    if not name:
        return "its name is empty"
    return label_value_problem(name)


def _absolute_path_problem(path: str) -> str | None:
    if not path.startswith("/"):
        return "it must be an absolute path"
    return text_problem(path) or ("it must not contain ':'" if ":" in path else None)


class VolumeMount(_Frozen):
    """`-v HOST:CONTAINER[:ro]`: a host directory (or file) mounted into the job's container (a
    bind mount; a hostPath volume on Kubernetes)."""

    host_path: str
    container_path: str
    read_only: bool = False

    @model_validator(mode="after")
    def _paths(self) -> VolumeMount:
        for what, path in (("host path", self.host_path), ("container path", self.container_path)):
            problem = _absolute_path_problem(path)
            if problem:
                raise ValueError(f"invalid volume {what} {path!r}: {problem}")
        return self


class PvcMount(_Frozen):
    """`--pvc`: a PersistentVolumeClaim mounted into the job's pod (Kubernetes only). Either an
    existing claim (`claim_name`), or a new claim of `size_bytes` in `storage_class` (None: the
    cluster's default class) that runai-lite creates with the job and deletes with it."""

    container_path: str
    read_only: bool = False
    claim_name: str | None = None
    storage_class: str | None = None
    size_bytes: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _shape(self) -> PvcMount:
        problem = _absolute_path_problem(self.container_path)
        if problem:
            raise ValueError(f"invalid --pvc mount path {self.container_path!r}: {problem}")
        if (self.claim_name is None) == (self.size_bytes is None):
            raise ValueError("a --pvc names an existing claim or gives the size of a new one, not both")
        if self.claim_name is not None and self.storage_class is not None:
            raise ValueError("a storage class applies only to a new claim")
        for what, name in (("claim", self.claim_name), ("storage class", self.storage_class)):
            problem = name is not None and (dns1123_subdomain_problem(name))
            if problem:
                raise ValueError(f"invalid --pvc {what} name {name!r}: {problem}")
        return self


def dns1123_subdomain_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if len(name) > DNS1123_SUBDOMAIN_MAX:
        return f"it is {len(name)} characters long (at most {DNS1123_SUBDOMAIN_MAX})"
    if not DNS1123_SUBDOMAIN.match(name):
        return "it must consist of lower-case letters, digits, '-' and '.', and start and end with a letter or digit"
    return None


class PortMapping(_Frozen):
    """`--port [HOST:]CONTAINER`: a container port published on the host (`host_port`, or one the
    runtime picks when None); on Kubernetes a port of the job's Service."""

    container_port: int = Field(ge=1, le=65535)
    host_port: int | None = Field(default=None, ge=1, le=65535)


class JobSpec(_Frozen):
    """A job as submitted. Validated before anything is stored."""

    name: str
    project: str
    image: str
    type: JobType = JobType.TRAIN
    request: GpuRequest | None = None
    command: tuple[str, ...] = ()
    # `runai submit --command`: in a container, `command` replaces the image's entrypoint; without it
    # `command` is passed to the entrypoint as arguments (Run:ai's rule). A process job runs `command`.
    replace_entrypoint: bool = False
    env: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    backoff_limit: int = Field(default=6, ge=0, le=100)
    user: str = ""
    # Host resources, Kubernetes' requests and limits (0: none). Requests are scheduled on both
    # backends; limits are enforced where the runtime can (cgroups, a container, the kubelet).
    cpu_milli: int = Field(default=0, ge=0)
    memory_mib: int = Field(default=0, ge=0)
    cpu_limit_milli: int = Field(default=0, ge=0)
    memory_limit_mib: int = Field(default=0, ge=0)
    volumes: tuple[VolumeMount, ...] = ()
    pvcs: tuple[PvcMount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    service_type: ServiceType | None = None
    labels: tuple[tuple[str, str], ...] = ()
    node_type: str | None = None  # Run:ai's `run.ai/type` node label; None: any node
    ttl_after_finish_s: int | None = Field(default=None, ge=0)
    large_shm: bool = False
    completions: int = Field(default=1, ge=1, le=10_000)
    parallelism: int = Field(default=1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _names(self) -> JobSpec:
        for what, value in (("job name", self.name), ("project name", self.project)):
            problem = dns1123_problem(value)
            if problem:
                raise ValueError(f"invalid {what} {value!r}: {problem}")
        return self

    @model_validator(mode="after")
    def _resources(self) -> JobSpec:
        if self.cpu_limit_milli and self.cpu_milli > self.cpu_limit_milli:
            raise ValueError(f"the CPU request ({self.cpu_milli}m) is above the CPU limit ({self.cpu_limit_milli}m)")
        if self.memory_limit_mib and self.memory_mib > self.memory_limit_mib:
            raise ValueError(f"the memory request ({self.memory_mib}Mi) is above the memory limit "
                             f"({self.memory_limit_mib}Mi)")
        return self

    @model_validator(mode="after")
    def _placement(self) -> JobSpec:
        for key, value in self.labels:
            problem = label_key_problem(key) or label_value_problem(value)
            if problem:
                raise ValueError(f"invalid label {key}={value}: {problem}")
        if len({key for key, _ in self.labels}) != len(self.labels):
            raise ValueError("a label key is given twice")
        if self.node_type is not None:
            problem = label_value_problem(self.node_type) or ("it is empty" if not self.node_type else None)
            if problem:
                raise ValueError(f"invalid node type {self.node_type!r}: {problem}")
        if self.parallelism > self.completions:
            raise ValueError(f"parallelism ({self.parallelism}) is above completions ({self.completions})")
        if self.type is not JobType.TRAIN and (self.completions > 1 or self.parallelism > 1):
            raise ValueError("--completions and --parallelism apply to training jobs only")
        if self.service_type is not None and not self.ports:
            raise ValueError("a service type needs at least one --port")
        for what, ports in (("container", [p.container_port for p in self.ports]),
                            ("host", [p.host_port for p in self.ports if p.host_port])):
            if len(set(ports)) != len(ports):
                raise ValueError(f"a {what} port is given twice with --port")
        mounts = [v.container_path for v in self.volumes] + [p.container_path for p in self.pvcs]
        if len(set(mounts)) != len(mounts):
            raise ValueError("two volumes are mounted at the same container path")
        return self

    @model_validator(mode="after")
    def _startable(self) -> JobSpec:
        """No process can be started with a NUL in its argv, environment or directory, and bytes
        that were not UTF-8 (surrogate escapes) can be neither stored nor sent to Kubernetes."""
        texts = [("image", self.image), ("working directory", self.working_dir or ""), ("user", self.user),
                 *(("command", word) for word in self.command),
                 *(("environment variable", f"{key}={value}") for key, value in self.env)]
        for what, text in texts:
            problem = text_problem(text)
            if problem:
                raise ValueError(f"invalid {what} {text!r}: {problem}")
        return self


class Submitter(_Frozen):
    """Who submitted a job and the context it runs in: the account (uid, primary and supplementary
    groups), the umask, the directory and the environment of the submitting shell.

    In system mode the account comes from the kernel (the socket peer's credentials), never from
    the client; only `umask`, `cwd` and `env` are what the client says about its own process."""

    user: str
    uid: int = Field(ge=0)
    gid: int = Field(ge=0)
    groups: tuple[int, ...] = ()
    umask: int = Field(default=0o022, ge=0, le=0o777)
    cwd: str = "/"
    env: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _startable(self, info: ValidationInfo) -> Submitter:
        if info.context and info.context.get(STORED):  # checked when it was submitted
            return self
        for what, text in (("directory", self.cwd), *(("environment variable", f"{k}={v}") for k, v in self.env.items())):
            problem = text_problem(text)
            if problem:
                raise ValueError(f"invalid submit {what} {text!r}: {problem}")
        return self


# --------------------------------------------------------------------------------------------
# Cluster state


class MigInstance(_Frozen):
    """A GPU instance (with its full-size compute instance) that exists on a GPU."""

    profile: str
    start: int = Field(ge=0)
    size: int = Field(ge=1, description="memory slices")
    uuid: str | None = None
    job: str | None = Field(default=None, description="id of the job using it; None = idle")

    @property
    def state(self) -> Literal["used", "idle"]:
        return "used" if self.job else "idle"


class Gpu(_Frozen):
    index: int = Field(ge=0)
    uuid: str
    model: str
    memory_mib: int = Field(ge=1)
    dynamic_mig: bool = False
    mig_enabled: bool = False
    simulated: bool = False
    mig_instances: tuple[MigInstance, ...] = ()


class Node(_Frozen):
    name: str
    gpus: tuple[Gpu, ...] = ()
    cpu_milli: int | None = Field(default=None, description="allocatable CPU; None = not tracked")
    memory_mib: int | None = Field(default=None, description="allocatable host memory; None = not tracked")
    schedulable: bool = True


def slice_span(start: int, size: int) -> str:
    """The memory slices an instance occupies: `0-1`, or `4` for a one-slice instance."""
    return str(start) if size == 1 else f"{start}-{start + size - 1}"


class MigSlot(NamedTuple):
    """Where a MIG partition is: node, GPU, first memory slice (what a partition's users are keyed by)."""

    node: str
    gpu_index: int
    start: int


class Allocation(_Frozen):
    """Where a job runs and what it got."""

    kind: AllocationKind
    node: str
    gpu_indices: tuple[int, ...]
    gpu_uuids: tuple[str, ...] = ()
    share_milli: int = Field(default=MILLI, ge=1, le=MILLI, description="per GPU; 1000 for whole GPUs")
    memory_mib: int | None = Field(default=None, description="memory limit per GPU (fraction) or instance size (MIG)")
    mig_profile: str | None = None
    mig_start: int | None = None
    mig_size: int | None = None
    mig_uuid: str | None = None

    @property
    def gpus(self) -> float:
        """GPUs allocated, as `runai list` shows them."""
        return allocated_gpus(len(self.gpu_indices), self.share_milli)

    @property
    def mig_slot(self) -> MigSlot | None:
        """The partition a MIG allocation uses; None for any other allocation."""
        if self.kind != AllocationKind.MIG or not self.gpu_indices or self.mig_start is None:
            return None
        return MigSlot(self.node, self.gpu_indices[0], self.mig_start)

    @property
    def device_uuids(self) -> tuple[str, ...]:
        """The devices the job's processes use: its MIG partition (once it has a UUID), or its GPUs."""
        if self.kind == AllocationKind.MIG:
            return (self.mig_uuid,) if self.mig_uuid else ()
        return self.gpu_uuids

    def describe(self, *, node: bool = True) -> str:
        """The allocation in words, as `runai describe` and the events show it:
        `MIG 2g.10gb on n1 GPU 0 at slices 2-3`, `0.5 of n1 GPU 1, 20GiB`, `n1 GPU 0,1`, `n1 (no GPU)`;
        without `node`, the same less the node (`MIG 2g.10gb on GPU 0 at slices 2-3`)."""
        gpus = ",".join(str(i) for i in self.gpu_indices)
        if not gpus:
            return f"{self.node} (no GPU)" if node else "no GPU"
        where = f"{self.node} GPU {gpus}" if node else f"GPU {gpus}"
        if self.kind == AllocationKind.MIG:
            placement = ""
            if self.mig_start is not None:
                size = self.mig_size or 1
                placement = f" at slice{'s' if size > 1 else ''} {slice_span(self.mig_start, size)}"
            return f"MIG {self.mig_profile} on {where}{placement}"
        if self.kind == AllocationKind.FRACTION:
            memory = f", {format_mib(self.memory_mib)}" if self.memory_mib else ""
            return f"{self.share_milli / MILLI:g} of {where}{memory}"
        return where

    def to_json(self) -> dict:
        """The `allocation` object of `runai list -o json`."""
        return {
            "kind": self.kind.value,
            "node": self.node,
            "gpu_index": self.gpu_indices[0] if self.gpu_indices else None,
            "gpu_indices": list(self.gpu_indices),
            "gpu_uuid": self.gpu_uuids[0] if self.gpu_uuids else None,
            "share": self.share_milli / MILLI,
            "memory_mib": self.memory_mib,
            "mig_profile": self.mig_profile,
            "mig_uuid": self.mig_uuid,
            "mig_placement": None if self.mig_start is None else {"start": self.mig_start, "size": self.mig_size},
        }


class Job(_Frozen):
    """The scheduler's view of a job: spec essentials plus where it stands."""

    id: str
    name: str
    project: str
    type: JobType = JobType.TRAIN
    request: GpuRequest | None = None
    status: JobStatus = JobStatus.PENDING
    submitted_at: float = 0.0
    started_at: float | None = None
    allocation: Allocation | None = None
    cpu_milli: int = 0
    memory_mib: int = 0
    gpu_models: tuple[str, ...] = Field(default=(), description="allowed GPU models; empty = any")
    eligible_nodes: tuple[str, ...] | None = Field(
        default=None, description="nodes the backend's node filters allow (kube-scheduler's predicates); None = any")

    @property
    def priority(self) -> int:
        return self.type.priority

    def may_run_on(self, node: str) -> bool:
        return self.eligible_nodes is None or node in self.eligible_nodes


class Project(_Frozen):
    name: str
    deserved_gpus: float = Field(default=0, ge=0)


class Snapshot(_Frozen):
    """Everything the scheduler decides from. Built by a backend; never read from a clock."""

    nodes: tuple[Node, ...] = ()
    jobs: tuple[Job, ...] = ()
    projects: tuple[Project, ...] = ()
    policy: str = "default"


# --------------------------------------------------------------------------------------------
# Plans: idempotent actions, each with a human reason


class Preempt(_Frozen):
    action: Literal["preempt"] = "preempt"
    job: str
    reason: str


class DestroyMig(_Frozen):
    action: Literal["destroy-mig"] = "destroy-mig"
    node: str
    gpu_index: int
    profile: str
    start: int
    uuid: str | None = None
    reason: str


class CreateMig(_Frozen):
    action: Literal["create-mig"] = "create-mig"
    node: str
    gpu_index: int
    profile: str
    start: int
    for_job: str | None = None
    reason: str


class Reserve(_Frozen):
    """The GPU becomes shared by fractions (Kubernetes: keep a reservation pod for it)."""

    action: Literal["reserve"] = "reserve"
    node: str
    gpu_index: int
    reason: str


class Bind(_Frozen):
    action: Literal["bind"] = "bind"
    job: str
    allocation: Allocation
    reason: str


Action = Annotated[Preempt | DestroyMig | CreateMig | Reserve | Bind, Field(discriminator="action")]


class Plan(_Frozen):
    """Actions in the order they must be applied, and why each job left pending stays pending."""

    actions: tuple[Action, ...] = ()
    pending: tuple[tuple[str, str], ...] = Field(default=(), description="(job id, why pending)")

    def pending_reason(self, job_id: str) -> str | None:
        return dict(self.pending).get(job_id)

    def of_type(self, cls: type) -> list:
        return [a for a in self.actions if isinstance(a, cls)]


def memory_mib_of(request_bytes: int) -> int:
    return -(-request_bytes // MiB)
