"""What a real cluster does and the emulator now does too: graceful deletion with a grace period, the
Job controller's tracking, replacement, podFailurePolicy, backoffLimit and suspend, a kubelet that
admits as a kubelet does (devices, CPU/memory/pods, node affinity, NoExecute taints), a device
plugin that can refuse, and the taint manager."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator import KubeEmulator
from tests.kube_emulator.jobs import TRACKING_FINALIZER
from tests.kube_emulator_tests.test_kube_emulator_pods import bind, eviction

GPU = "nvidia.com/gpu"
IGNORE_DISRUPTION = {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}


def pod(name: str, *, node: str | None = "n1", requests: dict | None = None, limits: dict | None = None,
        **spec) -> dict:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    body = {"metadata": {"name": name}, "spec": {
        "containers": [{"name": "main", "image": "busybox", "resources": resources}], **spec}}
    if node:
        body["spec"]["nodeName"] = node
    return body


def job(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}}, **spec}}


def phase(kube: KubeEmulator, name: str, namespace: str = "default") -> tuple[str, str | None]:
    status = kube.get("pods", name, namespace)["status"]
    return status["phase"], status.get("reason")


def job_pods(kube: KubeEmulator, name: str) -> list[dict]:
    return kube.objects("pods", "default", label_selector=f"job-name={name}")


def job_status(kube: KubeEmulator, name: str) -> dict:
    return kube.get("jobs", name, "default")["status"]


def conditions(kube: KubeEmulator, name: str) -> dict[str, tuple[str, str | None]]:
    return {c["type"]: (c["status"], c.get("reason")) for c in job_status(kube, name).get("conditions", [])}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now


# ---- graceful deletion ----------------------------------------------------------------------------

def test_a_deleted_running_pod_terminates_for_its_grace_period_then_goes(kube_emulator, kube_client):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n1")
    v1.create_namespaced_pod("default", pod("p", terminationGracePeriodSeconds=20))
    kube_emulator.kubelet.sync()
    answered = v1.delete_namespaced_pod("p", "default")
    assert answered.metadata.deletion_timestamp is not None and answered.metadata.deletion_grace_period_seconds == 20
    with pytest.raises(ApiException) as e:  # a terminating pod cannot be bound again
        bind(v1, "p", "n2")
    assert e.value.status == 409
    assert kube_emulator.kubelet.sync() == ["default/p"]  # SIGTERM: the container exits 143
    assert kube_emulator.get("pods", "p", "default") is None


def test_a_pod_that_ignores_sigterm_is_killed_when_its_grace_period_ends():
    clock = Clock()
    with KubeEmulator(clock=clock) as kube:
        kube.add_node("n1")
        kube.create("pods", pod("p", terminationGracePeriodSeconds=30))
        kube.kubelet.sync()
        kube.kubelet.on_sigterm("default", "p", None)
        kube.delete("pods", "p", "default")
        clock.now += timedelta(seconds=29)
        assert kube.kubelet.sync() == [] and kube.get("pods", "p", "default")["metadata"]["deletionTimestamp"]
        clock.now += timedelta(seconds=1)
        assert kube.kubelet.sync() == ["default/p"] and kube.get("pods", "p", "default") is None


def test_grace_period_zero_deletes_at_once(kube_emulator):
    kube_emulator.add_node("n1")
    kube_emulator.create("pods", pod("p"))
    kube_emulator.kubelet.sync()
    kube_emulator.delete("pods", "p", "default", gracePeriodSeconds=0)
    assert kube_emulator.get("pods", "p", "default") is None


def test_without_graceful_deletion_a_pod_goes_at_once():
    with KubeEmulator(graceful_pod_deletion=False) as kube:
        kube.add_node("n1")
        kube.create("pods", pod("p"))
        kube.kubelet.sync()
        kube.delete("pods", "p", "default")
        assert kube.get("pods", "p", "default") is None


# ---- the Job controller -----------------------------------------------------------------------------

def test_job_pods_carry_the_tracking_finalizer_and_are_counted_before_they_go(kube_emulator, kube_client):
    kube_emulator.add_node("n1")
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("j", backoffLimit=3))
    (first,) = kube_emulator.job_controller.sync()
    assert kube_emulator.get("pods", first, "default")["metadata"]["finalizers"] == [TRACKING_FINALIZER]
    bind(client.CoreV1Api(kube_client), first, "n1")
    kube_emulator.kubelet.sync()
    kube_emulator.delete("pods", first, "default")
    # no podFailurePolicy: a deleted pod counts as failed at once and is replaced while it terminates
    (second,) = kube_emulator.job_controller.sync()
    assert job_status(kube_emulator, "j")["terminating"] == 1 and job_status(kube_emulator, "j")["failed"] == 1
    terminating = kube_emulator.get("pods", first, "default")
    assert terminating["metadata"]["deletionTimestamp"] and not terminating["metadata"].get("finalizers")
    kube_emulator.kubelet.sync()
    assert kube_emulator.get("pods", first, "default") is None and second != first
    kube_emulator.job_controller.sync()
    assert job_status(kube_emulator, "j")["failed"] == 1


def test_with_a_pod_failure_policy_a_terminating_pod_is_replaced_only_once_failed(kube_emulator, kube_client):
    kube_emulator.add_node("n1")
    client.BatchV1Api(kube_client).create_namespaced_job(
        "default", job("j", backoffLimit=0, podFailurePolicy=IGNORE_DISRUPTION))
    (first,) = kube_emulator.job_controller.sync()
    v1 = client.CoreV1Api(kube_client)
    bind(v1, first, "n1")
    kube_emulator.kubelet.sync()
    kube_emulator.kubelet.on_sigterm("default", first, None)  # takes its whole grace period to stop
    v1.create_namespaced_pod_eviction(first, "default", eviction(first))
    for _ in range(3):
        assert kube_emulator.job_controller.sync() == []
        kube_emulator.kubelet.sync()
    assert [p["metadata"]["name"] for p in job_pods(kube_emulator, "j")] == [first]
    kube_emulator.kubelet.finish_terminating()  # killed: Failed with DisruptionTarget → ignored
    (second,) = kube_emulator.job_controller.sync()
    assert second != first and job_status(kube_emulator, "j").get("failed", 0) == 0
    assert "Failed" not in conditions(kube_emulator, "j")


def test_an_evicted_pod_that_exits_0_on_sigterm_completes_its_job(kube_emulator, kube_client):
    # the cluster's behaviour issue 11 item 6 is about: podFailurePolicy only sees Failed pods
    kube_emulator.add_node("n1")
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("j", podFailurePolicy=IGNORE_DISRUPTION))
    (first,) = kube_emulator.job_controller.sync()
    v1 = client.CoreV1Api(kube_client)
    bind(v1, first, "n1")
    kube_emulator.kubelet.sync()
    kube_emulator.kubelet.on_sigterm("default", first, 0)
    v1.create_namespaced_pod_eviction(first, "default", eviction(first))
    kube_emulator.kubelet.sync()
    assert kube_emulator.job_controller.sync() == []
    assert conditions(kube_emulator, "j")["Complete"] == ("True", None)
    assert job_status(kube_emulator, "j")["succeeded"] == 1


@pytest.mark.parametrize("exit_code, expected", [(42, ("Failed", "PodFailurePolicy")), (1, None)])
def test_pod_failure_policy_fail_job_on_exit_codes(kube_emulator, kube_client, exit_code, expected):
    kube_emulator.add_node("n1")
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}},
                        {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [42]}}]}
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("j", backoffLimit=2, podFailurePolicy=policy))
    (first,) = kube_emulator.job_controller.sync()
    bind(client.CoreV1Api(kube_client), first, "n1")
    kube_emulator.kubelet.sync()
    kube_emulator.kubelet.finish("default", first, exit_code=exit_code)
    created = kube_emulator.job_controller.sync()
    assert conditions(kube_emulator, "j").get("Failed", (None, None))[1] == (expected and expected[1])
    assert len(created) == (0 if expected else 1) and job_status(kube_emulator, "j")["failed"] == 1


def test_a_kubelet_rejection_counts_against_backoff_limit(kube_emulator, kube_client):
    kube_emulator.add_node("n1", capacity={GPU: "1"})
    kube_emulator.create("pods", pod("holder", limits={GPU: "1"}))
    kube_emulator.kubelet.sync()
    body = job("j", backoffLimit=0, podFailurePolicy=IGNORE_DISRUPTION)
    body["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {GPU: "1"}}
    client.BatchV1Api(kube_client).create_namespaced_job("default", body)
    (first,) = kube_emulator.job_controller.sync()
    bind(client.CoreV1Api(kube_client), first, "n1")
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, first) == ("Failed", "UnexpectedAdmissionError")
    kube_emulator.job_controller.sync()
    assert conditions(kube_emulator, "j")["Failed"] == ("True", "BackoffLimitExceeded")


def test_suspending_deletes_active_pods_without_counting_them_and_resuming_makes_new_ones(
        kube_emulator, kube_client):
    kube_emulator.add_node("n1")
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job("default", job("j", backoffLimit=0))
    (first,) = kube_emulator.job_controller.sync()
    bind(client.CoreV1Api(kube_client), first, "n1")
    kube_emulator.kubelet.sync()
    batch.patch_namespaced_job("j", "default", {"spec": {"suspend": True}})
    assert kube_emulator.job_controller.sync() == []
    assert kube_emulator.get("pods", first, "default")["metadata"]["deletionTimestamp"]
    assert conditions(kube_emulator, "j")["Suspended"] == ("True", "JobSuspended")
    assert "startTime" not in job_status(kube_emulator, "j")
    kube_emulator.kubelet.sync()
    kube_emulator.job_controller.sync()
    assert job_pods(kube_emulator, "j") == [] and job_status(kube_emulator, "j").get("failed", 0) == 0
    batch.patch_namespaced_job("j", "default", {"spec": {"suspend": False}})
    (second,) = kube_emulator.job_controller.sync()
    assert second != first and conditions(kube_emulator, "j")["Suspended"] == ("False", "JobResumed")
    assert "Failed" not in conditions(kube_emulator, "j") and job_status(kube_emulator, "j")["startTime"]


def test_completions_need_that_many_pods_to_exit_0(kube_emulator, kube_client):
    kube_emulator.add_node("n1")
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("j", completions=2))
    v1 = client.CoreV1Api(kube_client)
    for n in range(2):
        (name,) = kube_emulator.job_controller.sync()
        bind(v1, name, "n1")
        kube_emulator.kubelet.sync()
        kube_emulator.kubelet.finish("default", name, exit_code=0)
        assert ("Complete" in conditions(kube_emulator, "j")) is False
    kube_emulator.job_controller.sync()
    assert conditions(kube_emulator, "j")["Complete"] == ("True", None)
    assert job_status(kube_emulator, "j")["succeeded"] == 2 and job_status(kube_emulator, "j")["completionTime"]


# ---- the kubelet's admission and the device plugin ----------------------------------------------------

def test_gpus_are_accounted_per_device_and_a_terminating_pod_keeps_its_gpu(kube_emulator):
    kube_emulator.add_node("n1", capacity={GPU: "2"})
    for name in ("a", "b", "c"):
        kube_emulator.create("pods", pod(name, limits={GPU: "1"}))
    kube_emulator.kubelet.sync()
    assert [phase(kube_emulator, n)[0] for n in ("a", "b")] == ["Running", "Running"]
    assert phase(kube_emulator, "c") == ("Failed", "UnexpectedAdmissionError")
    assert "requested number of devices unavailable for nvidia.com/gpu" in kube_emulator.get(
        "pods", "c", "default")["status"]["message"]
    a, b = (kube_emulator.kubelet.devices_of("default", n)[GPU] for n in ("a", "b"))
    assert len(a) == len(b) == 1 and a != b and a[0].startswith("GPU-")

    kube_emulator.kubelet.on_sigterm("default", "a", None)
    kube_emulator.delete("pods", "a", "default")  # terminating: still holds its GPU
    kube_emulator.create("pods", pod("d", limits={GPU: "1"}))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "d") == ("Failed", "UnexpectedAdmissionError")
    kube_emulator.kubelet.finish_terminating()
    kube_emulator.create("pods", pod("e", limits={GPU: "1"}))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "e") == ("Running", None)
    assert kube_emulator.kubelet.devices_of("default", "e")[GPU] == a  # the freed device


def test_mig_devices_are_extended_resources_too(kube_emulator):
    kube_emulator.add_node("n1", devices={"nvidia.com/mig-1g.10gb": ["MIG-a", "MIG-b"]})
    for name in ("a", "b", "c"):
        kube_emulator.create("pods", pod(name, limits={"nvidia.com/mig-1g.10gb": "1"}))
    kube_emulator.kubelet.sync()
    assert [kube_emulator.kubelet.devices_of("default", n) for n in ("a", "b")] == [
        {"nvidia.com/mig-1g.10gb": ["MIG-a"]}, {"nvidia.com/mig-1g.10gb": ["MIG-b"]}]
    assert phase(kube_emulator, "c") == ("Failed", "UnexpectedAdmissionError")


def test_an_extended_resource_the_node_does_not_list_is_ignored_as_by_a_kubelet(kube_emulator):
    kube_emulator.add_node("n1")
    kube_emulator.create("pods", pod("a", limits={GPU: "4"}))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "a") == ("Running", None)


def test_a_device_plugin_that_refuses_fails_the_pod(kube_emulator):
    kube_emulator.add_node("n1", capacity={GPU: "8"})
    kube_emulator.kubelet.device_plugin.refuse("n1", GPU, message="rpc error: device unhealthy")
    kube_emulator.create("pods", pod("a", limits={GPU: "1"}))
    kube_emulator.create("pods", pod("b", limits={GPU: "1"}))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "a") == ("Failed", "UnexpectedAdmissionError")
    assert "rpc error: device unhealthy" in kube_emulator.get("pods", "a", "default")["status"]["message"]
    assert phase(kube_emulator, "b") == ("Running", None)  # one refusal only


@pytest.mark.parametrize("requests, reason", [({"cpu": "64"}, "OutOfcpu"), ({"memory": "512Gi"}, "OutOfmemory"),
                                              ({"cpu": "15", "memory": "1Gi"}, "OutOfcpu")])
def test_cpu_and_memory_are_checked_against_allocatable_minus_running_pods(kube_emulator, requests, reason):
    kube_emulator.add_node("n1", capacity={"cpu": "16", "memory": "64Gi"})
    kube_emulator.create("pods", pod("a-first", requests={"cpu": "2", "memory": "1Gi"}))
    kube_emulator.create("pods", pod("b-big", requests=requests))
    kube_emulator.kubelet.sync()  # oldest first (a tie in creationTimestamp goes by name here)
    assert phase(kube_emulator, "a-first") == ("Running", None)
    assert phase(kube_emulator, "b-big") == ("Failed", reason)
    assert kube_emulator.get("pods", "b-big", "default")["status"]["message"].startswith(
        "Pod was rejected: Node didn't have enough resource")


def test_the_pods_limit_is_checked(kube_emulator):
    kube_emulator.add_node("n1", capacity={"pods": "1"})
    kube_emulator.create("pods", pod("a"))
    kube_emulator.create("pods", pod("b"))
    kube_emulator.kubelet.sync()
    assert [phase(kube_emulator, n) for n in ("a", "b")] == [("Running", None), ("Failed", "OutOfpods")]


@pytest.mark.parametrize("constraint", [
    {"nodeSelector": {"zone": "us-east-1a"}},
    {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["us-east-1a"]}]}]}}}},
])
def test_node_selector_and_required_affinity_are_checked(kube_emulator, constraint):
    kube_emulator.add_node("n1", labels={"zone": "us-west-2b"})
    kube_emulator.add_node("n2", labels={"zone": "us-east-1a"})
    kube_emulator.create("pods", pod("wrong", **constraint))
    kube_emulator.create("pods", pod("right", node="n2", **constraint))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "wrong") == ("Failed", "NodeAffinity")
    assert phase(kube_emulator, "right") == ("Running", None)


def test_an_untolerated_no_execute_taint_rejects_and_a_tolerated_one_admits(kube_emulator):
    taint = {"key": "dedicated", "value": "team-b", "effect": "NoExecute"}
    kube_emulator.add_node("n1", taints=[taint, {"key": "gpu", "effect": "NoSchedule"}])
    kube_emulator.create("pods", pod("intruder"))
    kube_emulator.create("pods", pod("guest", tolerations=[{"key": "dedicated", "operator": "Equal",
                                                            "value": "team-b", "effect": "NoExecute"}]))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "intruder") == ("Failed", "TaintToleration")
    assert phase(kube_emulator, "guest") == ("Running", None)  # NoSchedule is the scheduler's, not the kubelet's


def test_a_no_execute_taint_added_later_evicts_running_pods_after_their_toleration_seconds():
    clock = Clock()
    with KubeEmulator(clock=clock) as kube:
        kube.add_node("n1")
        kube.create("pods", pod("plain"))
        kube.create("pods", pod("patient", tolerations=[{"key": "maintenance", "operator": "Exists",
                                                         "effect": "NoExecute", "tolerationSeconds": 60}]))
        kube.kubelet.sync()
        kube.patch("nodes", "n1", {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute",
                                                        "timeAdded": kube.store.now()}]}})
        kube.kubelet.sync()
        assert kube.get("pods", "plain", "default") is None
        assert phase(kube, "patient") == ("Running", None)
        clock.now += timedelta(seconds=60)
        kube.kubelet.on_sigterm("default", "patient", None)
        kube.kubelet.sync()
        evicted = kube.get("pods", "patient", "default")
        assert evicted["metadata"]["deletionTimestamp"]
        assert {c["type"]: c.get("reason") for c in evicted["status"]["conditions"]}["DisruptionTarget"] == \
            "DeletionByTaintManager"


def test_programs_see_the_devices_the_plugin_gave(kube_emulator):
    seen = {}
    kube_emulator.kubelet.run_program(("report",), lambda p, env: seen.update({p["metadata"]["name"]: env}))
    kube_emulator.add_node("n1", devices={GPU: ["GPU-aaa", "GPU-bbb"]})
    body = pod("a", limits={GPU: "2"})
    body["spec"]["containers"][0].update(command=["report"], env=[
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "X", "value": "1"}])
    kube_emulator.create("pods", body)
    kube_emulator.kubelet.sync()
    kube_emulator.kubelet.sync()
    assert seen == {"a": {"POD_NAME": "a", "X": "1", "NVIDIA_VISIBLE_DEVICES": "GPU-aaa,GPU-bbb"}}


@pytest.mark.kube_emulator(kubelet_admission=False)
def test_the_forgiving_kubelet_is_still_there_when_asked_for(kube_emulator):
    kube_emulator.add_node("n1", capacity={GPU: "1"})
    kube_emulator.create("pods", pod("a", limits={GPU: "2"}, nodeSelector={"zone": "x"}))
    kube_emulator.kubelet.sync()
    assert phase(kube_emulator, "a") == ("Running", None)
