"""The explicit Job-controller and kubelet helpers, fault injection and the request log."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator_tests.test_kube_emulator_pods import SCHEDULER, bind, eviction

IGNORE_DISRUPTION = {"rules": [{"action": "Ignore",
                                "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}


def job(name: str, **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"template": {
        "metadata": {"labels": {"runai/queue": "team"}, "annotations": {"gpu-fraction": "0.5"}},
        "spec": {"restartPolicy": "Never", "schedulerName": SCHEDULER, "containers": [{"name": "m", "image": "i"}]},
    }, **spec}}


def test_job_runs_to_completion_through_controller_binding_and_kubelet(kube_client, kube_emulator):
    v1, batch = client.CoreV1Api(kube_client), client.BatchV1Api(kube_client)
    kube_emulator.add_node("gpu-1")
    created = batch.create_namespaced_job("default", job("train", podFailurePolicy=IGNORE_DISRUPTION))
    (pod_name,) = kube_emulator.job_controller.sync()
    assert pod_name.startswith("train-")
    p = v1.read_namespaced_pod(pod_name, "default")
    assert p.metadata.labels["job-name"] == "train" and p.metadata.labels["runai/queue"] == "team"
    assert p.metadata.annotations == {"gpu-fraction": "0.5"} and p.spec.scheduler_name == SCHEDULER
    (owner,) = p.metadata.owner_references
    assert (owner.kind, owner.uid, owner.controller) == ("Job", created.metadata.uid, True)
    assert kube_emulator.job_controller.sync() == []  # the pod exists: nothing more to create
    assert batch.read_namespaced_job("train", "default").status.active == 1

    assert kube_emulator.kubelet.sync() == []  # not bound yet: no kubelet runs it
    bind(v1, pod_name, "gpu-1")
    assert kube_emulator.kubelet.sync() == [f"default/{pod_name}"]
    assert v1.read_namespaced_pod(pod_name, "default").status.phase == "Running"
    kube_emulator.kubelet.finish("default", pod_name)
    kube_emulator.job_controller.sync()
    status = batch.read_namespaced_job("train", "default").status
    assert (status.succeeded, status.active) == (1, None)
    assert [(c.type, c.status) for c in status.conditions] == [("Complete", "True")]


def test_an_evicted_job_pod_is_replaced_once_it_has_failed(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("train", podFailurePolicy=IGNORE_DISRUPTION))
    (first,) = kube_emulator.job_controller.sync()
    v1.create_namespaced_pod_eviction(first, "default", eviction(first))
    # the Job's tracking finalizer holds the deleted pod; with a podFailurePolicy the replacement waits
    # until it is Failed (podReplacementPolicy: Failed)
    assert kube_emulator.get("pods", first, "default")["metadata"]["deletionTimestamp"]
    assert kube_emulator.job_controller.sync() == []
    assert kube_emulator.get("jobs", "train", "default")["status"]["terminating"] == 1
    kube_emulator.kubelet.sync()  # the pod GC fails the unscheduled terminating pod
    (second,) = kube_emulator.job_controller.sync()
    assert second != first and kube_emulator.get("pods", first, "default") is None
    assert kube_emulator.get("jobs", "train", "default")["status"].get("failed", 0) == 0


def test_pod_failure_policy_ignores_disruption_but_counts_other_failures(kube_client, kube_emulator):
    kube_emulator.add_node("n")
    client.BatchV1Api(kube_client).create_namespaced_job(
        "default", job("train", backoffLimit=0, podFailurePolicy=IGNORE_DISRUPTION))
    (first,) = kube_emulator.job_controller.sync()
    kube_emulator.patch_status("pods", first, {"conditions": [{"type": "DisruptionTarget", "status": "True"}]},
                               "default")
    kube_emulator.mutate("pods", first, lambda p: p["status"].update(phase="Failed"), "default")
    (second,) = kube_emulator.job_controller.sync()  # ignored: replaced, not counted
    failed_pod = kube_emulator.get("pods", first, "default")  # a pod that failed in place stays, untracked
    assert failed_pod["status"]["phase"] == "Failed" and not failed_pod["metadata"].get("finalizers")
    kube_emulator.mutate("pods", second, lambda p: p["status"].update(phase="Failed"), "default")
    assert kube_emulator.job_controller.sync() == []
    status = kube_emulator.get("jobs", "train", "default")["status"]
    assert status["failed"] == 1 and status["conditions"][0]["reason"] == "BackoffLimitExceeded"


def test_suspended_job_gets_no_pods_and_a_missing_priority_class_is_an_event(kube_client, kube_emulator):
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job("default", job("held", suspend=True))
    assert kube_emulator.job_controller.sync() == []
    bad = job("bad")
    bad["spec"]["template"]["spec"]["priorityClassName"] = "train"
    batch.create_namespaced_job("default", bad)
    assert kube_emulator.job_controller.sync() == []
    (event,) = client.CoreV1Api(kube_client).list_namespaced_event(
        "default", field_selector="involvedObject.name=bad,reason=FailedCreate").items
    assert "no PriorityClass with name train" in event.message


def test_parallel_job_gets_parallelism_pods(kube_client, kube_emulator):
    client.BatchV1Api(kube_client).create_namespaced_job("default", job("wide", parallelism=3, completions=3))
    assert len(kube_emulator.job_controller.sync()) == 3
    assert len(kube_emulator.objects("pods", "default", label_selector="job-name=wide")) == 3


def test_injected_fault_fails_the_request_and_changes_nothing(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"), spec=client.V1PodSpec(containers=[client.V1Container(name="m",
                                                                                                     image="i")])))
    kube_emulator.fail_next(500, verb="create", resource="pods", subresource="binding")
    with pytest.raises(ApiException) as e:
        bind(v1, "p", "gpu-1")
    assert e.value.status == 500
    assert kube_emulator.get("pods", "p", "default")["spec"].get("nodeName") is None
    assert bind(v1, "p", "gpu-1") == 201  # the fault was used up
    assert [r.status for r in kube_emulator.requests_for(verb="create", resource="pods", subresource="binding")] \
        == [500, 201]


def test_request_log_records_verbs_and_can_be_cleared(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.list_namespaced_pod("default", label_selector="a=b")
    with pytest.raises(ApiException):
        v1.read_namespaced_pod("nope", "default")
    assert [(r.verb, r.resource, r.name, r.status) for r in kube_emulator.requests] == [
        ("list", "pods", None, 200), ("get", "pods", "nope", 404)]
    assert kube_emulator.requests[0].query == {"labelSelector": "a=b"}
    kube_emulator.clear_requests()
    assert kube_emulator.requests == []
