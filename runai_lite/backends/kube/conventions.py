"""Names runai-lite writes onto Kubernetes objects, and how each value is encoded.

Where Run:ai or KAI already has a convention (`runai/queue`, `gpu-fraction`, `gpu-memory`,
`runai-reservation`, `runai-calculated-status`, `runai-gpu-group`) it is kept, so existing manifests
and habits carry over. Everything runai-lite adds lives under the `runai-lite/` prefix.
Pure module: no Kubernetes client, no I/O.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ...errors import UserError
from ...model import Allocation, JobType, dns1123_problem

SCHEDULER_NAME = "runai-lite-scheduler"
SYSTEM_NAMESPACE = "runai-lite"
RESERVATION_NAMESPACE = "runai-reservation"
PROJECT_PREFIX = "runai-"
LEASE_NAME = "runai-lite-controller"

# Namespaces (projects)
QUEUE_LABEL = "runai/queue"
DEVICE_CONFIGMAPS_COMPONENT = "device-configmaps"  # the ClusterRole a project's RoleBinding grants the controller
CONTROLLER_ACCOUNT = "runai-lite/controller-account"  # on that ClusterRole: NAMESPACE/NAME of the controller's account
DESERVED_GPUS = "runai-lite/deserved-gpus"  # namespace annotation: the project's quota

# Pods and jobs: the request (Run:ai/KAI names where they exist)
GPU_FRACTION = "gpu-fraction"
GPU_MEMORY = "gpu-memory"  # MiB, as KAI reads it
GPU_MEMORY_BYTES = "runai-lite/gpu-memory-bytes"  # the exact bytes the researcher typed
MIG_PROFILE = "runai-lite/mig-profile"
RUNAI_MIG_PREFIX = "nvidia.com/mig-"  # Run:ai's `nvidia.com/mig-<profile>: "1"`
PRIORITY_LABEL = "priorityClassName"  # the Run:ai CLI's job label
JOB_NAME_LABEL = "runai-lite/job"
NODE_TYPE_LABEL = "run.ai/type"  # Run:ai's node type, chosen with `runai submit --node-type`
USER_ANNOTATION = "user"

# Written by the controller
ALLOCATION = "runai-lite/allocation"  # pod: the Allocation (JSON) the pod holds, written before binding
BOUND_AT = "runai-lite/bound-at"  # pod: when the allocation was made (RFC 3339)
# A Job's pods are its attempts: each is numbered when first bound, from its Job's count, so that
# the numbers stay right after an earlier attempt's pod is gone (a preempted one is deleted).
ATTEMPT = "runai-lite/attempt"  # pod: its attempt number
ATTEMPTS_STARTED = "runai-lite/attempts-started"  # batch Job: the highest attempt number given


def attempt_number(obj: dict[str, Any] | None, annotation: str) -> int:
    """A pod's attempt number (`ATTEMPT`) or a Job's count (`ATTEMPTS_STARTED`); 0 when there is none."""
    text = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(annotation, "")
    return int(text) if text.isdigit() else 0
STATUS = "runai-calculated-status"  # batch Job and pod: what `runai list` shows
PENDING_REASON = "runai-lite/pending-reason"
GPU_GROUP_LABEL = "runai-gpu-group"  # fraction pods and their reservation pod

# Reservation pods
RESERVATION_APP = "runai-reservation"
RESERVED_UUID = "run.ai/reserve_for_gpu_index"  # written by the reservation pod itself: its GPU's UUID
RESERVATION_NODE = "runai-lite/node"
RESERVATION_GPU = "runai-lite/gpu-index"

# Nodes
DYNAMIC_MIG_LABEL = "node-role.kubernetes.io/runai-dynamic-mig"
MIG_ENABLED_LABEL = "node-role.kubernetes.io/runai-mig-enabled"
GPU_INVENTORY = "runai-lite/gpus"  # node annotation by the agent: [{index, uuid, name, memory_mib, mig_enabled, ...}]
MIG_DESIRED = "runai-lite/mig-desired"  # node annotation by the controller
MIG_ACTUAL = "runai-lite/mig-actual"  # node annotation by the agent
REPORTED_BY = "runai-lite/reported-by"  # node annotation by the agent: its node's name, tied to its token by admission
AGENT_REPORTS = (GPU_INVENTORY, MIG_ACTUAL, REPORTED_BY)
MIG_CONFIG_STATE_LABEL = "nvidia.com/mig.config.state"  # the MIG manager's: pending, success, failed
MIG_CONFIG_LABEL = "nvidia.com/mig.config"  # the MIG manager's input: a mig-parted config name (not obeyed here)
NODE_NAME_CLAIM = "authentication.kubernetes.io/node-name"  # a pod-bound token's node, in userInfo.extra
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # GPU feature discovery
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"  # GPU feature discovery, MiB
MIG_CAPABLE_LABEL = "nvidia.com/mig.capable"  # GPU feature discovery
GPU_RESOURCE = "nvidia.com/gpu"

PRIORITY_CLASSES = {t.priority_class: t for t in JobType}  # the job type each `priorityClassName` label names
PRIORITY_CLASS_LABEL = "runai-lite/job-type"  # on the PriorityClass objects: whose class each is


@dataclass(frozen=True)
class PriorityClassNames:
    """The PriorityClass each job type runs with: the install's release name, then the Run:ai
    class name (`runai-lite-train`, `runai-lite-build`, ...), so that two installs, or another
    product's `train`, never share one. The controller is told the prefix (`--priority-class-prefix`),
    the CLI finds it on the classes (`PRIORITY_CLASS_LABEL`)."""

    prefix: str = "runai-lite-"

    def of(self, job_type: JobType) -> str:
        return self.prefix + job_type.priority_class

    def job_type(self, name: str | None) -> JobType | None:
        for job_type in JobType:
            if name == self.of(job_type):
                return job_type
        return None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.of(t) for t in JobType)

    @classmethod
    def from_classes(cls, classes: list[dict[str, Any]]) -> PriorityClassNames | None:
        """The names the PriorityClass objects labelled `PRIORITY_CLASS_LABEL` carry; None when
        there are none (runai-lite is not installed)."""
        for obj in classes:
            name = (obj.get("metadata") or {}).get("name") or ""
            declared = ((obj.get("metadata") or {}).get("labels") or {}).get(PRIORITY_CLASS_LABEL)
            if declared in PRIORITY_CLASSES and name.endswith(declared):
                return cls(prefix=name[: len(name) - len(declared)])
        return None


def mig_resource(profile: str) -> str:
    """The NVIDIA device plugin's resource for a MIG profile under the mixed strategy."""
    return RUNAI_MIG_PREFIX + profile


def project_namespace(project: str) -> str:
    return PROJECT_PREFIX + project


def pvc_name(job: str, index: int) -> str:
    """The PersistentVolumeClaim runai-lite creates for a job's `index`-th `--pvc` of a new claim."""
    return f"{job}-pvc-{index}"


def job_configmap(job: str) -> str:
    """The ConfigMap holding a batch Job's device environment (one pod at a time per job)."""
    return f"{job}-runai-gpu"


def pod_configmap(pod_name: str, job_name: str | None) -> str:
    """The ConfigMap a pod reads its device environment from: its batch Job's (the name the Job's
    template names in `envFrom`), `<pod>-runai-gpu` for a pod written by hand. Derived by the
    controller from the pod's name and owner, never read from anything a user writes."""
    return job_configmap(job_name) if job_name else f"{pod_name}-runai-gpu"


def _gpu_digest(node: str, gpu_index: int) -> str:
    return hashlib.sha256(f"{node}/{gpu_index}".encode()).hexdigest()


def reservation_pod_name(node: str, gpu_index: int) -> str:
    """Deterministic, so that a retried or restarted controller finds its own pod (AlreadyExists is
    success) instead of creating a second one: the race KAI fixed in PR #1693."""
    return f"runai-reservation-gpu-{_gpu_digest(node, gpu_index)[:8]}-{gpu_index}"


def gpu_group(node: str, gpu_index: int) -> str:
    """The `runai-gpu-group` label value shared by a GPU's fraction pods and its reservation pod."""
    return _gpu_digest(node, gpu_index)[:16]


def job_id(namespace: str, pod_name: str) -> str:
    """The scheduler's id of a pod's job."""
    return f"{namespace}/{pod_name}"


# --------------------------------------------------------------------------------------------
# Encoded values


def encode_allocation(allocation: Allocation) -> str:
    return allocation.model_dump_json(exclude_defaults=True)


def decode_allocation(text: str | None) -> Allocation | None:
    if not text:
        return None
    try:
        return Allocation.model_validate_json(text)
    except ValueError:
        return None  # a hand-edited or foreign value: treated as no allocation


def encode_layout(gpus: dict[int, list[dict[str, Any]]], **extra: Any) -> str:
    """A per-GPU MIG layout: `{"gpus": {"0": [{"profile": "2g.10gb", "start": 0, ...}]}, ...}`."""
    body = {"gpus": {str(index): sorted(items, key=lambda i: i["start"]) for index, items in sorted(gpus.items())}}
    return json.dumps({**body, **extra}, sort_keys=True, separators=(",", ":"))


def decode_layout(text: str | None) -> tuple[dict[int, list[dict[str, Any]]], dict[str, Any]]:
    """The per-GPU instances and the other keys of a layout annotation; empty when absent or unreadable."""
    if not text:
        return {}, {}
    try:
        data = json.loads(text)
        gpus = {int(index): list(items) for index, items in (data.get("gpus") or {}).items()}
    except (ValueError, TypeError, AttributeError):
        return {}, {}
    return gpus, {k: v for k, v in data.items() if k != "gpus"}


def now_rfc3339(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> float | None:
    """Seconds since the epoch of a Kubernetes timestamp (None when absent)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def parse_deserved(text: str | None) -> float:
    try:
        value = float(text) if text else 0.0
    except ValueError:
        return 0.0
    return value if value >= 0 else 0.0


_QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
_QUANTITY_FACTOR = {None: 1, "m": 1e-3, "k": 1e3, "Ki": 2**10, "M": 1e6, "Mi": 2**20, "G": 1e9, "Gi": 2**30,
                    "T": 1e12, "Ti": 2**40}


def parse_quantity(text: str | int | None) -> float:
    """A Kubernetes resource quantity (`2`, `500m`, `16Gi`) as a number; 0 when absent or unreadable."""
    if text is None:
        return 0.0
    match = _QUANTITY.match(str(text).strip())
    if not match:
        return 0.0
    return float(match[1]) * _QUANTITY_FACTOR[match[2]]


def check_project_name(project: str) -> None:
    problem = dns1123_problem(project_namespace(project))
    if problem:
        raise UserError(f"invalid project name {project!r}: {problem}", "use lower-case letters, digits and '-'")
