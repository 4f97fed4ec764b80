"""Device delivery: what one allocation gives a job, the same on every backend.

Pure core: `grant(allocation, device_uuids, enforcement=..., mounts=...)` -> `DeviceGrant(env,
devices, mounts, host_ipc)`. Adapters turn a grant into what one way of starting a job takes:
`process_environment` (a process started directly), `container_flags` (`docker`/`podman run`:
CDI `--device nvidia.com/gpu=UUID`, docker's `--gpus device=…`, or the variable alone for the
toolkit's hook, as `container_delivery` chooses; bind mounts), `pod_environment` (the data
of a Kubernetes pod's device ConfigMap). The embedded runner and the Kubernetes binder both call
`grant`, so a job sees one environment for one allocation (tests/devices compares the two paths).

The job's device environment (Run:ai and KAI-Scheduler names, runai-lite's own prefixed
`RUNAI_LITE_`):

| variable | no GPU | whole GPUs | fraction | MIG |
|---|---|---|---|---|
| `NVIDIA_VISIBLE_DEVICES`, `CUDA_VISIBLE_DEVICES` | `void`, empty | GPU UUIDs | GPU UUID | MIG UUID |
| `RUNAI_NUM_OF_GPUS` (GPUs in all) | `0` | `2` | `0.5` | compute share, `0.286` |
| `GPU_PORTION` (share of each device) | `0` | `1` | `0.5` | compute share, `0.286` |
| `RUNAI_GPU_MEMORY_LIMIT`, `RUNAI_GPU_MEMORY_REQUEST` | | | `0.500` | |
| `RUNAI_LITE_GPU_MEMORY_LIMIT_MIB` | | | limit | instance memory |
| `RUNAI_LITE_ENFORCEMENT` | | | mechanism | |
| `RUNAI_LITE_MIG_PROFILE` | | | | `2g.10gb` |

Counts are written as numbers are (`0.5`, `2`); the memory fractions with three decimals, as
Run:ai writes them. A fraction then gets the variables of its node's memory enforcement
(`enforcement.JobEnforcement`), which win over the job's own. On Kubernetes a pod of whole GPUs
gets its devices from the device plugin (its `nvidia.com/gpu` limit), so `pod_environment` leaves
the visible-devices variables to it. How the devices reach a pod on a given node (ConfigMap
variables, a CDI annotation, or the device plugin) is `delivery.pod_delivery`, by `DeliveryMode`.
"""

from .adapters import ContainerDelivery, container_delivery, container_flags, pod_environment, process_environment
from .delivery import CDI_ANNOTATION, DeliveryMode, PodDelivery, cdi_device_names, pod_delivery
from .grant import DeviceGrant, Mount, enforcement_mounts, grant

__all__ = [
    "CDI_ANNOTATION",
    "ContainerDelivery",
    "DeliveryMode",
    "PodDelivery",
    "cdi_device_names",
    "pod_delivery",
    "DeviceGrant",
    "Mount",
    "container_delivery",
    "container_flags",
    "enforcement_mounts",
    "grant",
    "pod_environment",
    "process_environment",
]
