"""Pod subresources over HTTP: binding (and the no-double-bind guarantee), eviction, status, log."""

from __future__ import annotations

import json

import pydantic
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator import KubeEmulator
from tests.kube_emulator_tests.test_kube_emulator_crud import pod

SCHEDULER = "runai-lite-scheduler"


def binding(pod_name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": pod_name},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}}


def bind(v1: client.CoreV1Api, name: str, node: str, namespace: str = "default") -> int:
    # the API answers a Status, which the client cannot parse as the V1Binding it expects: read it raw
    response = v1.create_namespaced_pod_binding(name, namespace, binding(name, node), _preload_content=False)
    return response.status


def test_binding_sets_the_node_and_the_scheduled_condition(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p", schedulerName=SCHEDULER))
    assert bind(v1, "p", "gpu-1") == 201
    bound = v1.read_namespaced_pod("p", "default")
    assert bound.spec.node_name == "gpu-1"
    assert [(c.type, c.status) for c in bound.status.conditions] == [("PodScheduled", "True")]


def test_a_second_binding_is_409_and_keeps_the_first_node(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p", schedulerName=SCHEDULER))
    bind(v1, "p", "gpu-1")
    with pytest.raises(ApiException) as e:
        bind(v1, "p", "gpu-2")
    assert e.value.status == 409 and "already assigned to node" in json.loads(e.value.body)["message"]
    with pytest.raises(ApiException) as e:  # the namespaced bindings resource is held to the same rule
        v1.create_namespaced_binding("default", binding("p", "gpu-2"), _preload_content=False)
    assert e.value.status == 409
    assert v1.read_namespaced_pod("p", "default").spec.node_name == "gpu-1"


def test_binding_a_missing_pod_is_404_and_a_uid_precondition_is_checked(kube_client):
    v1 = client.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as e:
        bind(v1, "ghost", "gpu-1")
    assert e.value.status == 404
    v1.create_namespaced_pod("default", pod("p"))
    stale = binding("p", "gpu-1")
    stale["metadata"]["uid"] = "uid-of-an-earlier-pod-with-this-name"
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod_binding("p", "default", stale, _preload_content=False)
    assert e.value.status == 409


def test_the_client_cannot_parse_a_binding_answer_as_on_a_real_cluster(kube_client):
    # kubernetes-client/python#547: the Status answer is not a V1Binding. The pod is bound all the same.
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p"))
    with pytest.raises((ValueError, pydantic.ValidationError)):
        v1.create_namespaced_pod_binding("p", "default", binding("p", "gpu-1"))
    assert v1.read_namespaced_pod("p", "default").spec.node_name == "gpu-1"


def eviction(name: str, namespace: str = "default") -> client.V1Eviction:
    return client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=namespace))


def test_eviction_marks_disruption_target_then_deletes_the_pod(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("victim"))  # not on a node: no grace period to wait for
    since = kube_emulator.resource_version
    v1.create_namespaced_pod_eviction("victim", "default", eviction("victim"))
    assert kube_emulator.get("pods", "victim", "default") is None
    w = watch.Watch()
    seen = []
    for event in w.stream(v1.list_namespaced_pod, "default", resource_version=str(since), timeout_seconds=10):
        seen.append((event["type"], [c.type for c in event["object"].status.conditions]))
        if event["type"] == "DELETED":
            w.stop()
    assert seen == [("MODIFIED", ["DisruptionTarget"]), ("DELETED", ["DisruptionTarget"])]


def test_eviction_of_a_missing_pod_is_404(kube_client):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(kube_client).create_namespaced_pod_eviction("ghost", "default", eviction("ghost"))
    assert e.value.status == 404


def test_eviction_blocked_by_a_disruption_budget_is_429(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p", labels={"app": "keep"}))
    kube_emulator.create("poddisruptionbudgets", {"metadata": {"name": "keep"}, "spec": {
        "selector": {"matchLabels": {"app": "keep"}}, "minAvailable": 1}})
    kube_emulator.patch_status("poddisruptionbudgets", "keep", {"disruptionsAllowed": 0, "currentHealthy": 1,
                               "desiredHealthy": 1, "expectedPods": 1}, "default")
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod_eviction("p", "default", eviction("p"))
    assert e.value.status == 429
    assert kube_emulator.get("pods", "p", "default") is not None


def test_graceful_deletion_keeps_an_evicted_pod_terminating_until_the_kubelet_confirms():
    with KubeEmulator() as kube, kube.api_client() as api:
        v1 = client.CoreV1Api(api)
        kube.add_node("gpu-1")
        v1.create_namespaced_pod("default", pod("victim"))
        bind(v1, "victim", "gpu-1")
        kube.kubelet.sync()
        v1.create_namespaced_pod_eviction("victim", "default", eviction("victim"))
        terminating = v1.read_namespaced_pod("victim", "default")
        assert terminating.metadata.deletion_timestamp is not None
        assert terminating.metadata.deletion_grace_period_seconds == 30
        v1.create_namespaced_pod("default", pod("unbound"))  # an unbound pod still goes at once
        v1.delete_namespaced_pod("unbound", "default")
        assert kube.get("pods", "unbound", "default") is None
        assert kube.kubelet.finish_terminating() == ["default/victim"]
        assert kube.objects("pods") == []


def test_pod_log_text_tail_and_errors(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p"))
    with pytest.raises(ApiException) as e:  # not started yet
        v1.read_namespaced_pod_log("p", "default")
    assert e.value.status == 400 and "waiting to start" in json.loads(e.value.body)["message"]
    kube_emulator.add_node("n")
    bind(v1, "p", "n")
    kube_emulator.kubelet.sync()
    kube_emulator.set_pod_log("default", "p", "one\ntwo\nthree\n")
    assert v1.read_namespaced_pod_log("p", "default") == "one\ntwo\nthree\n"
    assert v1.read_namespaced_pod_log("p", "default", tail_lines=2) == "two\nthree\n"
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod_log("p", "default", container="nope")
    assert e.value.status == 400


def test_pod_log_follow_streams_appends_until_the_pod_finishes(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n")
    v1.create_namespaced_pod("default", pod("p"))
    bind(v1, "p", "n")
    kube_emulator.kubelet.sync()
    kube_emulator.set_pod_log("default", "p", "epoch 1\n")
    lines = []
    for line in watch.Watch().stream(v1.read_namespaced_pod_log, "p", "default", follow=True):
        lines.append(line)
        if line == "epoch 1":
            kube_emulator.append_pod_log("default", "p", "epoch 2\ndone\n")
            kube_emulator.kubelet.finish("default", "p", exit_code=0)
    assert lines == ["epoch 1", "epoch 2", "done"]


def test_multi_container_log_needs_a_container(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("n")
    v1.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {"nodeName": "n", "containers": [
        {"name": "a", "image": "i"}, {"name": "b", "image": "i"}]}})
    kube_emulator.kubelet.sync()
    kube_emulator.set_pod_log("default", "p", "from b\n", container="b")
    with pytest.raises(ApiException) as e:
        v1.read_namespaced_pod_log("p", "default")
    assert e.value.status == 400
    assert v1.read_namespaced_pod_log("p", "default", container="b") == "from b\n"
