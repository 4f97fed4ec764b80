"""How a grant's devices reach a Kubernetes pod: the delivery modes. Pure.

The controller chooses the device (a GPU or MIG UUID); what differs between clusters is how the
container runtime is told. `pod_delivery(grant, mode, plugin_delivers=...)` gives the data of the
pod's device ConfigMap and the annotations the binder sets on the pod before binding it:

| mode | fraction, MIG (what the controller chose) | whole GPUs, and a MIG device the pod asks the device plugin for |
|---|---|---|
| `env` | `NVIDIA_VISIBLE_DEVICES` / `CUDA_VISIBLE_DEVICES` in the ConfigMap | the device plugin |
| `cdi` | the pod annotation `cdi.k8s.io/runai-lite: nvidia.com/gpu=<UUID>` (the names `nvidia-ctk cdi generate` writes; a MIG device's UUID is `MIG-…`); no visible-devices variables | the device plugin |
| `device-plugin` | as `env` (a share of a GPU is not a device-plugin device) | the device plugin |

`plugin_delivers` says that the pod's own limits ask the device plugin for this allocation's device
(`nvidia.com/gpu` for whole GPUs, `nvidia.com/mig-<profile>` for MIG under the mixed strategy):
then the kubelet's device manager hands it out and sets the visible devices, so the ConfigMap
leaves them out in every mode (two deliveries could name two different devices).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from .grant import VISIBLE_DEVICES, DeviceGrant

CDI_KIND = "nvidia.com/gpu"  # the CDI device kind nvidia-ctk generates (`nvidia.com/gpu=UUID`, `=MIG-UUID`)
CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"
CDI_ANNOTATION = CDI_ANNOTATION_PREFIX + "runai-lite"  # the container runtime injects the devices it names


class DeliveryMode(StrEnum):
    ENV = "env"
    CDI = "cdi"
    DEVICE_PLUGIN = "device-plugin"


def cdi_device_names(devices: tuple[str, ...] | list[str]) -> list[str]:
    """Fully qualified CDI names (`vendor/class=name`) of GPU and MIG UUIDs."""
    return [f"{CDI_KIND}={uuid}" for uuid in devices]


@dataclass(frozen=True)
class PodDelivery:
    """What the binder writes for one pod: its ConfigMap's data and the pod annotations to set."""

    env: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)


def pod_delivery(grant: DeviceGrant, mode: DeliveryMode, *, plugin_delivers: bool = False) -> PodDelivery:
    """The ConfigMap data and pod annotations that give a pod the grant's devices in `mode` (module doc)."""
    by_plugin = plugin_delivers or grant.whole_gpus
    if by_plugin or (mode is DeliveryMode.CDI and grant.devices):
        env = {key: value for key, value in grant.env.items() if key not in VISIBLE_DEVICES}
    else:
        env = dict(grant.env)
    if mode is DeliveryMode.CDI and grant.devices and not by_plugin:
        return PodDelivery(env, {CDI_ANNOTATION: ",".join(cdi_device_names(grant.devices))})
    return PodDelivery(env)
