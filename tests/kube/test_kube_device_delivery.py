"""Device delivery modes on the emulator: what each mode puts on the pod and its ConfigMap, and the
kubelet stand-in admitting it as a kubelet and its container runtime would (device-plugin
accounting, CDI injection from the node's CDI spec); the device plugin refreshed by the agent after
a MIG change; other schedulers' GPU and MIG devices counted as taken."""

from __future__ import annotations

from typing import Any

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.delivery import DELIVERY_LABEL
from runai_lite.backends.kube.node_agent import OPERATOR_NAMESPACE
from runai_lite.devices import CDI_ANNOTATION, DeliveryMode
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus

from .world import IMAGE, PLUGIN_LABEL, World


def spec(name: str, **flags: Any) -> JobSpec:
    return JobSpec(name=name, project="team-a", image="img", request=request_from_flags(**flags))


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_mig_node("gpu-node-1")
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 4)
    world.backend.set_dynamic_mig("gpu-node-1", True)
    return world


def delivering(world: World, mode: DeliveryMode) -> None:
    world.controller = Controller(world.controller_api, IMAGE, install_name=world.install_name, delivery=mode)


def running(world: World, name: str) -> dict[str, Any]:
    job = {j.name: j for j in world.backend.list_jobs("team-a")}[name]
    assert job.status == JobStatus.RUNNING, (job.status, job.pending_reason)
    pod = world.live_pod("team-a", name)
    assert pod["status"]["phase"] == "Running", pod["status"]
    return pod


def test_env_mode_names_the_device_in_the_configmap_and_nothing_on_the_pod(world: World):
    world.backend.submit(spec("mig", mig_profile="1g.10gb"))
    world.backend.submit(spec("half", gpu="0.5"))
    world.settle()
    for name in ("mig", "half"):
        pod = running(world, name)
        assert CDI_ANNOTATION not in pod["metadata"].get("annotations", {})
        assert world.kube.kubelet.cdi_devices_of("runai-team-a", pod["metadata"]["name"]) == []
    [instance] = world.drivers["gpu-node-1"].mig_instances(0)
    assert world.device_env("team-a", "mig")["NVIDIA_VISIBLE_DEVICES"] == instance.uuid
    assert world.device_env("team-a", "half")["NVIDIA_VISIBLE_DEVICES"] == "GPU-t4-node-0"


def test_cdi_mode_annotates_the_pod_with_cdi_names_and_the_runtime_injects_them(world: World):
    delivering(world, DeliveryMode.CDI)
    world.backend.submit(spec("mig", gpu_memory="10GB"))
    world.backend.submit(spec("half", gpu="0.5"))
    world.settle()
    [instance] = world.drivers["gpu-node-1"].mig_instances(0)
    expected = {"mig": f"nvidia.com/gpu={instance.uuid}", "half": "nvidia.com/gpu=GPU-t4-node-0"}
    for name, device in expected.items():
        pod = running(world, name)
        assert pod["metadata"]["annotations"][CDI_ANNOTATION] == device
        assert world.kube.kubelet.cdi_devices_of("runai-team-a", pod["metadata"]["name"]) == [device]
        env = world.device_env("team-a", name)
        assert "NVIDIA_VISIBLE_DEVICES" not in env and "CUDA_VISIBLE_DEVICES" not in env
        assert env["GPU_PORTION"] in ("0.5", "0.143")  # the rest of the grant still travels in the ConfigMap
    assert instance.uuid.startswith("MIG-")
    # the job's process runs on the injected device: the agent sees it in use
    assert world.drivers["gpu-node-1"].processes_on(instance.uuid)


def test_a_node_label_overrides_the_cluster_mode(world: World):
    delivering(world, DeliveryMode.CDI)
    world.kube.patch("nodes", "t4-node", {"metadata": {"labels": {DELIVERY_LABEL: "env"}}})
    world.backend.submit(spec("mig", mig_profile="1g.10gb"))
    world.backend.submit(spec("half", gpu="0.5"))
    world.settle()
    assert CDI_ANNOTATION in running(world, "mig")["metadata"]["annotations"]
    assert CDI_ANNOTATION not in running(world, "half")["metadata"].get("annotations", {})
    assert world.device_env("team-a", "half")["NVIDIA_VISIBLE_DEVICES"] == "GPU-t4-node-0"


def test_a_cdi_device_missing_from_the_nodes_spec_keeps_the_pod_from_starting(world: World):
    delivering(world, DeliveryMode.CDI)
    world.kube.kubelet.cdi.set_devices("t4-node", [])  # a node whose runtime has no CDI spec for its GPU
    world.backend.submit(spec("half", gpu="0.5"))
    world.settle()
    pod = world.live_pod("team-a", "half")
    assert pod["spec"]["nodeName"] == "t4-node" and pod["status"]["phase"] == "Pending"
    [status] = pod["status"]["containerStatuses"]
    assert status["state"]["waiting"]["reason"] == "CreateContainerError"
    assert "unresolvable CDI devices nvidia.com/gpu=GPU-t4-node-0" in status["state"]["waiting"]["message"]


def static_mig_pod(name: str, profile: str, *, node: str | None = None, ours: bool = True) -> dict[str, Any]:
    """A pod written as for the device plugin's mixed strategy: `nvidia.com/mig-<profile>: 1`."""
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [{
        "name": "main", "image": "img", "resources": {"limits": {k.mig_resource(profile): "1"}}}]}
    if ours:
        spec["schedulerName"] = k.SCHEDULER_NAME
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name, "namespace": "runai-team-a"}, "spec": spec}


def test_a_mig_device_asked_of_the_device_plugin_is_handed_out_by_it_once_it_was_restarted(world: World):
    delivering(world, DeliveryMode.DEVICE_PLUGIN)
    starts = world.plugin_starts["gpu-node-1"]
    world.kube.create("pods", static_mig_pod("static", "1g.10gb"), "runai-team-a")
    world.settle()

    pod = world.kube.get("pods", "static", "runai-team-a")
    assert pod["status"]["phase"] == "Running", pod["status"]
    [instance] = world.drivers["gpu-node-1"].mig_instances(0)
    # the agent restarted the device plugin after creating the instance, which now offers it
    assert world.plugin_starts["gpu-node-1"] == starts + 1
    node = world.kube.get("nodes", "gpu-node-1")
    assert node["status"]["allocatable"][k.mig_resource("1g.10gb")] == "1"
    # the kubelet's accounting agrees with ours: the device plugin gave the pod that instance
    assert world.kube.kubelet.devices_of("runai-team-a", "static") == {k.mig_resource("1g.10gb"): [instance.uuid]}
    env = world.kube.get("configmaps", k.pod_configmap("static", None), "runai-team-a")["data"]
    assert "NVIDIA_VISIBLE_DEVICES" not in env and env["RUNAI_LITE_MIG_PROFILE"] == "1g.10gb"
    assert CDI_ANNOTATION not in pod["metadata"].get("annotations", {})


def test_the_agent_restarts_the_device_plugin_and_feature_discovery_after_each_change(world: World):
    world.kube.create("pods", {
        "metadata": {"name": "gfd-gpu-node-1", "namespace": OPERATOR_NAMESPACE, "labels": {"app": "gpu-feature-discovery"}},
        "spec": {"nodeName": "gpu-node-1", "containers": [{"name": "gfd", "image": "gfd"}]}}, OPERATOR_NAMESPACE)
    world.kube.create("pods", {  # another node's: left alone
        "metadata": {"name": "gfd-other", "namespace": OPERATOR_NAMESPACE, "labels": {"app": "gpu-feature-discovery"}},
        "spec": {"nodeName": "t4-node", "containers": [{"name": "gfd", "image": "gfd"}]}}, OPERATOR_NAMESPACE)
    world.settle()
    starts = world.plugin_starts["gpu-node-1"]
    assert world.kube.get("pods", "gfd-gpu-node-1", OPERATOR_NAMESPACE) is not None  # no change yet, no restart

    world.backend.submit(spec("mig", mig_profile="3g.20gb"))
    world.settle()
    assert world.plugin_starts["gpu-node-1"] == starts + 1
    assert world.kube.get("pods", "gfd-gpu-node-1", OPERATOR_NAMESPACE) is None
    assert world.kube.get("pods", "gfd-other", OPERATOR_NAMESPACE) is not None
    assert world.kube.get("nodes", "gpu-node-1")["status"]["allocatable"][k.mig_resource("3g.20gb")] == "1"

    world.settle()  # nothing changed on the GPU: no restart
    assert world.plugin_starts["gpu-node-1"] == starts + 1
    live = world.kube.objects("pods", OPERATOR_NAMESPACE, label_selector=PLUGIN_LABEL)
    assert [p["spec"]["nodeName"] for p in live if not p["metadata"].get("deletionTimestamp")] == ["gpu-node-1"]


def test_a_foreign_pods_mig_device_is_counted_as_taken(world: World):
    world.backend.submit(spec("first", mig_profile="1g.10gb"))
    world.settle()
    [idle] = world.drivers["gpu-node-1"].mig_instances(0)
    world.backend.delete_jobs("team-a", ["first"])
    world.settle()
    assert [i.uuid for i in world.drivers["gpu-node-1"].mig_instances(0)] == [idle.uuid]  # kept idle (lazy)

    # another scheduler's pod takes that instance through the device plugin
    world.kube.create("pods", static_mig_pod("foreign", "1g.10gb", node="gpu-node-1", ours=False), "runai-team-a")
    world.settle()
    assert world.kube.get("pods", "foreign", "runai-team-a")["status"]["phase"] == "Running"

    world.backend.submit(spec("second", mig_profile="1g.10gb"))
    world.settle()
    pod = running(world, "second")
    job = {j.name: j for j in world.backend.list_jobs("team-a")}["second"]
    assert job.allocation.mig_uuid != idle.uuid  # not handed the foreign pod's device
    assert world.device_env("team-a", "second")["NVIDIA_VISIBLE_DEVICES"] == job.allocation.mig_uuid
    profiles = sorted((i.profile, i.uuid == idle.uuid) for i in world.drivers["gpu-node-1"].mig_instances(0))
    assert profiles == [("1g.10gb", False), ("1g.10gb", True)]  # and its device was not destroyed
    assert pod["spec"]["nodeName"] == "gpu-node-1"


def test_a_foreign_pods_whole_gpu_is_counted_on_a_node_the_agent_reports(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    world.add_mig_node("mixed", "A100-SXM4-40GB:1,A100-SXM4-40GB:1:mig-off")  # GPU 1 is an ordinary GPU
    world.kube.mutate("nodes", "mixed", lambda n: [n["status"][f].update({k.GPU_RESOURCE: "1"})
                                                   for f in ("capacity", "allocatable")])
    world.backend.create_project("team-a", 4)
    world.kube.create("pods", {"metadata": {"name": "foreign", "namespace": "runai-team-a"}, "spec": {
        "nodeName": "mixed", "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "img", "resources": {"limits": {k.GPU_RESOURCE: "1"}}}]}},
        "runai-team-a")
    world.backend.submit(spec("whole", gpu="1"))
    world.settle()
    job = {j.name: j for j in world.backend.list_jobs("team-a")}["whole"]
    assert job.status == JobStatus.PENDING  # GPU 0 is in MIG mode, GPU 1 is the foreign pod's
