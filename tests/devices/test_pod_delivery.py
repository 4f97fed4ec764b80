"""How a grant reaches a pod in each delivery mode (`devices.delivery`): the table of the module doc."""

from __future__ import annotations

import pytest

from runai_lite.devices import CDI_ANNOTATION, DeliveryMode, grant, pod_delivery
from runai_lite.model import Allocation

HALF = Allocation(kind="fraction", node="n", gpu_indices=(1,), gpu_uuids=("GPU-b",), share_milli=500, memory_mib=20000)
MIG = Allocation(kind="mig", node="n", gpu_indices=(0,), share_milli=143, memory_mib=9856, mig_profile="1g.10gb",
                 mig_start=6, mig_size=1, mig_uuid="MIG-x")
TWO = Allocation(kind="gpu", node="n", gpu_indices=(0, 1), gpu_uuids=("GPU-a", "GPU-b"))
NONE = Allocation(kind="gpu", node="n", gpu_indices=())

VISIBLE = {"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"}

# (allocation, mode, pod asks the device plugin) -> (visible devices in the ConfigMap, CDI annotation)
CASES = [
    (HALF, DeliveryMode.ENV, False, "GPU-b", None),
    (HALF, DeliveryMode.CDI, False, None, "nvidia.com/gpu=GPU-b"),
    (HALF, DeliveryMode.DEVICE_PLUGIN, False, "GPU-b", None),  # no device plugin resource for a share
    (MIG, DeliveryMode.ENV, False, "MIG-x", None),
    (MIG, DeliveryMode.CDI, False, None, "nvidia.com/gpu=MIG-x"),
    (MIG, DeliveryMode.DEVICE_PLUGIN, False, "MIG-x", None),  # the pod did not ask the plugin: env
    (MIG, DeliveryMode.DEVICE_PLUGIN, True, None, None),
    (MIG, DeliveryMode.CDI, True, None, None),  # the plugin delivers what the pod asked it for, in any mode
    (TWO, DeliveryMode.ENV, False, None, None),
    (TWO, DeliveryMode.CDI, False, None, None),
    (NONE, DeliveryMode.CDI, False, "void", None),
]


@pytest.mark.parametrize(("allocation", "mode", "plugin", "visible", "cdi"), CASES)
def test_each_mode_delivers_the_device_one_way(allocation, mode, plugin, visible, cdi):
    delivery = pod_delivery(grant(allocation), mode, plugin_delivers=plugin)
    assert delivery.env.get("NVIDIA_VISIBLE_DEVICES") == visible
    assert ("CUDA_VISIBLE_DEVICES" in delivery.env) == (visible is not None)
    assert delivery.annotations.get(CDI_ANNOTATION) == cdi
    assert set(delivery.annotations) <= {CDI_ANNOTATION}
    # everything else of the grant travels in the ConfigMap in every mode
    rest = {key: value for key, value in grant(allocation).env.items() if key not in VISIBLE}
    assert {key: value for key, value in delivery.env.items() if key not in VISIBLE} == rest


def test_several_devices_are_one_comma_separated_cdi_annotation():
    two_migs = grant(MIG, ["MIG-x", "MIG-y"])
    assert pod_delivery(two_migs, DeliveryMode.CDI).annotations == {
        CDI_ANNOTATION: "nvidia.com/gpu=MIG-x,nvidia.com/gpu=MIG-y"}
