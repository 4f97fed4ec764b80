"""The invariant every Kubernetes test of preemption, races and reservations checks: no device is
given twice. Bound pods of ours that are not finished (terminating ones included: their containers
still run) never hold more than a whole GPU's shares, nor one MIG partition twice."""

from __future__ import annotations

from collections import Counter

from runai_lite.backends.kube import allocations
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.cluster import is_finished, is_ours
from tests.kube_emulator import KubeEmulator


def held_devices(kube: KubeEmulator) -> tuple[Counter, Counter]:
    """Shares (milli) per (node, GPU index) and holders per (node, GPU index, MIG start), from the
    Allocation objects of the pods they speak for."""
    shares: Counter = Counter()
    partitions: Counter = Counter()
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"], p["metadata"]["uid"]): p for p in kube.objects("pods")}
    for record in kube.objects(f"{allocations.PLURAL}.{allocations.GROUP}"):
        pod = pods.get(allocations.held_by(record) or ("", "", ""))
        allocation = allocations.parse(record)
        if pod is None or not is_ours(pod) or allocation is None or not pod["spec"].get("nodeName") or is_finished(pod):
            continue
        for index in allocation.gpu_indices:
            if allocation.kind == "mig":
                partitions[(allocation.node, index, allocation.mig_start)] += 1
            else:
                shares[(allocation.node, index)] += allocation.share_milli
    return shares, partitions


def assert_not_overbooked(kube: KubeEmulator) -> None:
    shares, partitions = held_devices(kube)
    assert all(v <= 1000 for v in shares.values()), f"a GPU is given more than once: {dict(shares)}"
    assert all(v <= 1 for v in partitions.values()), f"a MIG partition is given twice: {dict(partitions)}"


def reserved_uuids(kube: KubeEmulator) -> dict[tuple[str, int], str]:
    return {(p["metadata"]["annotations"][k.RESERVATION_NODE], int(p["metadata"]["annotations"][k.RESERVATION_GPU])):
            p["metadata"]["annotations"].get(k.RESERVED_UUID, "")
            for p in kube.objects("pods", k.RESERVATION_NAMESPACE)}
