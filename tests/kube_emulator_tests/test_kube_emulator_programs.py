"""The kubelet stand-in plays runai-lite's reservation pods with runai-lite's own program, as the pod's
service account, reporting the GPU the device plugin stand-in really gave it."""

from __future__ import annotations

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube import render_manifests
from runai_lite.backends.kube.manifests import reservation_pod
from tests.kube_emulator.programs import play_runai_lite
from tests.kube_emulator.standalone import install


def test_a_reservation_pod_reports_the_uuid_of_the_gpu_it_was_given(kube_emulator):
    kube_emulator.create_namespace("gpu-operator")  # the install binds the agent a Role there
    install(kube_emulator, render_manifests(create_namespace=True))
    play_runai_lite(kube_emulator)
    kube_emulator.add_node("n1", devices={k.GPU_RESOURCE: ["GPU-first", "GPU-second"]})
    kube_emulator.create("pods", reservation_pod("n1", 1, "runai-lite:test"))
    kube_emulator.kubelet.sync()
    name = k.reservation_pod_name("n1", 1)
    held = kube_emulator.kubelet.devices_of(k.RESERVATION_NAMESPACE, name)[k.GPU_RESOURCE]
    annotations = kube_emulator.get("pods", name, k.RESERVATION_NAMESPACE)["metadata"]["annotations"]
    # the device plugin knows nothing of the controller's GPU index: it gave the first free GPU
    assert held == ["GPU-first"] and annotations[k.RESERVED_UUID] == "GPU-first"
    assert kube_emulator.kubelet.program_errors == []
    patches = kube_emulator.requests_for("patch", "pods")
    assert [(r.user, r.name) for r in patches] == [
        (f"system:serviceaccount:{k.RESERVATION_NAMESPACE}:runai-lite-reservation", name)]


def test_a_reservation_pod_on_a_full_node_is_rejected_and_reports_nothing(kube_emulator):
    kube_emulator.create_namespace("gpu-operator")  # the install binds the agent a Role there
    install(kube_emulator, render_manifests(create_namespace=True))
    play_runai_lite(kube_emulator)
    kube_emulator.add_node("n1", devices={k.GPU_RESOURCE: ["GPU-only"]})
    kube_emulator.create("pods", reservation_pod("n1", 0, "runai-lite:test"))
    kube_emulator.create("pods", reservation_pod("n1", 1, "runai-lite:test"))
    kube_emulator.kubelet.sync()
    pods = kube_emulator.objects("pods", k.RESERVATION_NAMESPACE)
    outcomes = sorted((p["status"]["phase"], p["status"].get("reason"),
                       p["metadata"]["annotations"].get(k.RESERVED_UUID)) for p in pods)
    assert outcomes == [("Failed", "UnexpectedAdmissionError", None), ("Running", None, "GPU-only")]
