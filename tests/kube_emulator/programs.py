"""Container programs the kubelet stand-in can run (`Kubelet.run_program`), for the runai-lite images.

`runai-lite reservation` is played by runai-lite's own code (`report_reserved_gpu`), acting as the
pod's service account (so the chart's RBAC is what allows it), with the `NVIDIA_VISIBLE_DEVICES` the
device plugin stand-in gave the pod: the reservation pod reports the GPU the kubelet really gave it,
which need not be the one the controller had in mind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .emulator import KubeEmulator

RESERVATION_COMMAND = ("runai-lite", "reservation")


def play_runai_lite(kube: "KubeEmulator") -> None:
    """Let the kubelet stand-in run runai-lite's reservation pods."""
    from runai_lite.backends.kube.client import KubeApi
    from runai_lite.backends.kube.node_agent import report_reserved_gpu, visible_gpu_uuids

    def reservation(pod: dict[str, Any], env: dict[str, str]) -> None:
        meta = pod["metadata"]
        service_account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        with kube.api_client(service_account=f"{meta['namespace']}/{service_account}") as client:
            uuids = visible_gpu_uuids(env.get("NVIDIA_VISIBLE_DEVICES") or "void")
            report_reserved_gpu(KubeApi(client), env.get("POD_NAMESPACE", meta["namespace"]),
                                env.get("POD_NAME", meta["name"]), uuids)

    kube.kubelet.run_program(RESERVATION_COMMAND, reservation)
