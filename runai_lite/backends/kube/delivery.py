"""Which device delivery mode (`devices.delivery`) a pod gets on its node, and when the device plugin
is ready to hand out what the controller chose. Pure: node and pod objects in, decisions out.

The cluster's mode is the controller's setting (`runai-lite controller --device-delivery`, the
chart's `deviceDelivery`); a node labelled `runai-lite/device-delivery=<mode>` by its administrator
overrides it (a node whose container runtime has no CDI, say).
"""

from __future__ import annotations

from typing import Any

from ...devices import DeliveryMode
from ...model import Allocation, AllocationKind
from . import conventions as k
from .meta import Meta

DELIVERY_LABEL = "runai-lite/device-delivery"
MODES = ", ".join(m.value for m in DeliveryMode)


def node_delivery(node: dict[str, Any] | None, default: DeliveryMode) -> DeliveryMode:
    """The node's mode: its label when that names a mode, else the cluster's."""
    value = Meta(node).label(DELIVERY_LABEL) if node is not None else None
    try:
        return DeliveryMode(value) if value else default
    except ValueError:
        return default


def plugin_resource(allocation: Allocation) -> str | None:
    """The device plugin resource that hands out this allocation's device: `nvidia.com/gpu` for whole
    GPUs, `nvidia.com/mig-<profile>` for a MIG instance (the mixed strategy); None for a fraction."""
    if allocation.kind == AllocationKind.GPU:
        return k.GPU_RESOURCE
    if allocation.kind == AllocationKind.MIG and allocation.mig_profile:
        return k.mig_resource(allocation.mig_profile)
    return None


def plugin_delivers(pod: dict[str, Any], allocation: Allocation) -> bool:
    """Whether the pod's own limits ask the device plugin for this allocation's device."""
    resource = plugin_resource(allocation)
    if resource is None:
        return False
    return any(k.parse_quantity(((c.get("resources") or {}).get("limits") or {}).get(resource)) > 0
               for c in (pod.get("spec") or {}).get("containers") or [])


def advertised(node: dict[str, Any], resource: str) -> int:
    """How many devices of `resource` the node's device plugin offers (its allocatable)."""
    status = node.get("status") or {}
    return int(k.parse_quantity((status.get("allocatable") or status.get("capacity") or {}).get(resource)))


def plugin_not_ready(node: dict[str, Any], allocation: Allocation, mig_instances: list[dict[str, Any]]) -> str | None:
    """Why the device plugin cannot hand out a MIG device yet (None when it can): it must offer as
    many `nvidia.com/mig-<profile>` devices as the node agent reports instances of that profile, so
    it has registered again since the last MIG change (the agent restarts it); before that the
    kubelet would refuse the pod."""
    if allocation.kind != AllocationKind.MIG or not allocation.mig_profile:
        return None
    resource = k.mig_resource(allocation.mig_profile)
    exist = sum(1 for item in mig_instances if item.get("profile") == allocation.mig_profile)
    offered = advertised(node, resource)
    if offered == exist:
        return None
    return (f"waiting for the device plugin on {Meta(node).name} to offer the {exist} {resource} devices the node "
            f"agent created (it offers {offered}; the agent restarts it after a MIG change)")
