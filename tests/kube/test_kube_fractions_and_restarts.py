"""Fractions on an ordinary GPU node (ConfigMap, reservation pod, binding), pods written by hand with
Run:ai/KAI annotations, and controllers that stop in the middle of a plan or race each other."""

from __future__ import annotations

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.controller import Controller
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus
from runai_lite.scheduler import plan
from tests.kube_emulator import KubeEmulator

from .world import IMAGE, World


def spec(name: str, project: str = "team-b", **flags) -> JobSpec:
    return JobSpec(name=name, project=project, image="busybox", request=request_from_flags(**flags), user="bob",
                   command=("sleep", "1000"))


@pytest.fixture
def world(kube_emulator: KubeEmulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 2)
    world.backend.create_project("team-b", 1)
    return world


def reservation_pods(world: World) -> list[dict]:
    return world.kube.objects("pods", k.RESERVATION_NAMESPACE)


def successful_bindings(world: World) -> list:
    return [r for r in world.kube.requests_for("create", "pods", "binding") if r.status < 300]


def test_a_fraction_job_gets_its_configmap_reservation_pod_and_binding(world: World):
    world.backend.submit(spec("frac05", gpu="0.5"))
    world.settle()

    pod = world.live_pod("team-b", "frac05")
    assert pod["spec"]["nodeName"] == "t4-node" and pod["status"]["phase"] == "Running"
    [reservation] = reservation_pods(world)
    assert reservation["spec"]["nodeName"] == "t4-node"
    container = reservation["spec"]["containers"][0]
    assert container["resources"]["limits"][k.GPU_RESOURCE] == "1"
    reserved = reservation["metadata"]["annotations"][k.RESERVED_UUID]
    env = world.device_env("team-b", "frac05")
    assert env["NVIDIA_VISIBLE_DEVICES"] == reserved
    assert env["GPU_PORTION"] == "0.5"
    assert env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == str(15360 // 2)
    assert pod["metadata"]["labels"][k.GPU_GROUP_LABEL] == reservation["metadata"]["labels"][k.GPU_GROUP_LABEL]
    assert len(successful_bindings(world)) == 1
    info = world.backend.get_job("team-b", "frac05")
    assert info.status is JobStatus.RUNNING and info.gpus_allocated == 0.5
    assert info.allocation.gpu_uuids == (reserved,)
    assert info.enforcement == "none" and info.memory_limit_mib == 15360 // 2
    assert [e.kind for e in info.events].count("Bound") == 1


def test_two_halves_share_one_reservation_which_goes_when_they_do(world: World):
    world.backend.submit(spec("a", gpu="0.5"))
    world.backend.submit(spec("b", gpu="0.5"))
    world.settle()
    assert len(reservation_pods(world)) == 1
    assert world.device_env("team-b", "a")["NVIDIA_VISIBLE_DEVICES"] == world.device_env("team-b", "b")[
        "NVIDIA_VISIBLE_DEVICES"]

    world.backend.delete_jobs("team-b", ["a"])
    world.settle()
    assert len(reservation_pods(world)) == 1
    world.backend.delete_jobs("team-b", ["b"])
    world.settle()
    assert reservation_pods(world) == []


def test_a_hand_written_pod_with_kai_annotations_is_scheduled(world: World):
    world.kube.create("pods", {
        "metadata": {"name": "yaml-pod", "namespace": "runai-team-b", "annotations": {"gpu-memory": "4000"}},
        "spec": {"schedulerName": k.SCHEDULER_NAME, "containers": [{"name": "main", "image": "busybox"}]},
    })
    world.settle()
    pod = world.kube.get("pods", "yaml-pod", "runai-team-b")
    assert pod["spec"]["nodeName"] == "t4-node"
    allocation = k.decode_allocation(pod["metadata"]["annotations"][k.ALLOCATION])
    assert allocation.kind == "fraction" and allocation.memory_mib == 4000
    configmap = world.kube.get("configmaps", "yaml-pod-runai-gpu", "runai-team-b")
    assert configmap["data"]["NVIDIA_VISIBLE_DEVICES"].startswith("GPU-t4-node-")
    assert pod["metadata"]["annotations"][k.STATUS] == "Running"


def test_a_pod_with_a_contradictory_request_is_left_pending_with_a_warning(world: World):
    world.kube.create("pods", {
        "metadata": {"name": "bad", "namespace": "runai-team-b",
                     "annotations": {"gpu-memory": "4000", "gpu-fraction": "0.5"}},
        "spec": {"schedulerName": k.SCHEDULER_NAME, "containers": [{"name": "main", "image": "busybox"}]},
    })
    world.settle()
    pod = world.kube.get("pods", "bad", "runai-team-b")
    assert not pod["spec"].get("nodeName")
    assert "more than one way" in pod["metadata"]["annotations"][k.PENDING_REASON]
    events = [e for e in world.kube.objects("events", "runai-team-b") if e["involvedObject"]["name"] == "bad"]
    assert [e["reason"] for e in events] == ["InvalidRequest"] and events[0]["type"] == "Warning"


def test_a_job_that_cannot_fit_says_why_it_is_pending(world: World):
    world.backend.submit(spec("huge", gpu_memory="40GB"))
    world.settle()
    info = world.backend.get_job("team-b", "huge")
    assert info.status is JobStatus.PENDING and info.pending_reason
    assert "Unschedulable" in [e.kind for e in info.events]
    assert reservation_pods(world) == []


def test_a_controller_that_dies_before_binding_leaves_work_a_new_one_finishes_once(world: World):
    world.backend.submit(spec("frac", gpu="0.25"))
    world.kube.job_controller.sync()
    world.device_plugin()
    # the first controller reserves the GPU and claims the pod, then dies before the bind lands
    world.kube.fail_next(500, verb="create", resource="pods", subresource="binding")
    first = Controller(world.controller_api, IMAGE)
    with pytest.raises(Exception, match="500"):
        for _ in range(3):
            first.reconcile_once()
            world.device_plugin()
    claimed = world.live_pod("team-b", "frac")
    assert k.ALLOCATION in claimed["metadata"]["annotations"] and not claimed["spec"].get("nodeName")
    assert len(reservation_pods(world)) == 1

    world.controller = Controller(world.controller_api, IMAGE)  # the restarted controller
    world.settle()
    pod = world.live_pod("team-b", "frac")
    assert pod["spec"]["nodeName"] == "t4-node"
    assert pod["metadata"]["annotations"][k.ALLOCATION] != ""
    assert k.decode_allocation(pod["metadata"]["annotations"][k.ALLOCATION]).gpu_indices == \
        k.decode_allocation(claimed["metadata"]["annotations"][k.ALLOCATION]).gpu_indices
    assert len(reservation_pods(world)) == 1
    assert len(successful_bindings(world)) == 1


def test_a_controller_that_dies_after_reserving_does_not_leak_a_second_reservation(world: World):
    world.backend.submit(spec("frac", gpu="0.25"))
    world.kube.job_controller.sync()
    # dies when claiming the pod, after creating the reservation pod
    world.kube.fail_next(500, verb="patch", resource="pods", namespace="runai-team-b")
    with pytest.raises(Exception, match="500"):
        Controller(world.controller_api, IMAGE).reconcile_once()
    assert len(reservation_pods(world)) == 1

    world.controller = Controller(world.controller_api, IMAGE)
    world.settle()
    assert len(reservation_pods(world)) == 1
    assert world.live_pod("team-b", "frac")["spec"]["nodeName"] == "t4-node"
    assert len(successful_bindings(world)) == 1


def test_two_controllers_deciding_from_the_same_state_bind_each_pod_once(world: World):
    """The second controller's plan is stale by the time it applies it: its claims carry the
    resourceVersion it read, get 409, and it binds nothing."""
    for name in ("x", "y", "z"):
        world.backend.submit(spec(name, gpu="0.5"))
    world.kube.job_controller.sync()
    first = Controller(world.controller_api, IMAGE)

    def race(snapshot):
        decided = plan(snapshot)
        for _ in range(3):  # the other replica decides and applies in the meantime
            first.reconcile_once()
            world.device_plugin()
        return decided

    Controller(world.controller_api, IMAGE, planner=race).reconcile_once()
    assert [r.status for r in world.kube.requests_for("patch", "pods") if r.status >= 400] == [409, 409, 409]
    world.settle()
    bound = [p for p in world.kube.objects("pods", "runai-team-b") if p["spec"].get("nodeName")]
    assert len(bound) == 3
    assert len(successful_bindings(world)) == 3
    shares: dict[tuple[str, int], int] = {}
    for pod in bound:
        allocation = k.decode_allocation(pod["metadata"]["annotations"][k.ALLOCATION])
        key = (allocation.node, allocation.gpu_indices[0])
        shares[key] = shares.get(key, 0) + allocation.share_milli
    assert all(total <= 1000 for total in shares.values()), shares
    assert len(reservation_pods(world)) == len(shares)


def test_a_reservation_pod_the_kubelet_refused_sends_its_fraction_to_another_gpu(world: World):
    world.backend.submit(spec("frac", gpu="0.5"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    [reservation] = reservation_pods(world)
    refused_gpu = reservation["metadata"]["annotations"][k.RESERVATION_GPU]
    world.kube.patch_status("pods", reservation["metadata"]["name"],
                            {"phase": "Failed", "reason": "UnexpectedAdmissionError"}, k.RESERVATION_NAMESPACE)

    world.controller.reconcile_once()  # claim rolled back, that GPU rests, the fraction is placed again
    [again] = reservation_pods(world)
    assert again["metadata"]["annotations"][k.RESERVATION_GPU] != refused_gpu
    world.settle()
    pod = world.live_pod("team-b", "frac")
    assert pod["spec"]["nodeName"] == "t4-node"
    assert k.decode_allocation(pod["metadata"]["annotations"][k.ALLOCATION]).gpu_indices != (int(refused_gpu),)


def test_a_controller_that_dies_after_binding_leaves_a_status_the_next_one_writes(world: World):
    world.backend.submit(spec("frac", gpu="0.5"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    world.device_plugin()
    world.kube.fail_next(500, verb="patch", resource="jobs")
    with pytest.raises(Exception, match="500"):
        Controller(world.controller_api, IMAGE).reconcile_once()  # binds, then fails writing the Job's status
    assert world.live_pod("team-b", "frac")["spec"]["nodeName"] == "t4-node"

    world.controller = Controller(world.controller_api, IMAGE)
    world.settle()
    job = world.kube.get("jobs.batch", "frac", "runai-team-b")
    assert job["metadata"]["annotations"][k.STATUS] == "Running"
    assert len(successful_bindings(world)) == 1
