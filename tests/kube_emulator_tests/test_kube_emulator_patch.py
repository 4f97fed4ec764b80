"""PATCH flavours as the kubernetes client sends them, and the strategic-merge rules on their own."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator.patches import merge_patch, strategic_merge_patch
from tests.kube_emulator_tests.test_kube_emulator_crud import pod


def two_container_pod(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"a": "1"}}, "spec": {"containers": [
        {"name": "main", "image": "busybox", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "side", "image": "sidecar"},
    ]}}


def test_dict_patch_is_sent_as_strategic_merge_and_merges_maps(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", two_container_pod("p"))
    patched = v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"b": "2"}, "annotations": {"x": "y"}}})
    assert patched.metadata.labels == {"a": "1", "b": "2"} and patched.metadata.annotations == {"x": "y"}
    (request,) = kube_emulator.requests_for(verb="patch")
    assert request.content_type == "application/strategic-merge-patch+json"


def test_strategic_merge_merges_containers_and_env_by_name(kube_client):
    apps = client.AppsV1Api(kube_client)
    template = two_container_pod("ignored")
    apps.create_namespaced_deployment("default", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "1"}}, "template": {"metadata": template["metadata"],
                                                              "spec": template["spec"]}}})
    patched = apps.patch_namespaced_deployment("d", "default", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "busybox:2", "env": [{"name": "B", "value": "3"}]}]}}}})
    main, side = patched.spec.template.spec.containers
    assert (main.name, main.image, side.name) == ("main", "busybox:2", "side")
    assert [(e.name, e.value) for e in main.env] == [("A", "1"), ("B", "3")]


def test_pod_spec_changes_beyond_images_are_refused_as_on_a_cluster(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", two_container_pod("p"))
    assert v1.patch_namespaced_pod("p", "default", {"spec": {"containers": [
        {"name": "side", "image": "sidecar:2"}]}}).spec.containers[1].image == "sidecar:2"
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_pod("p", "default", {"spec": {"containers": [
            {"name": "main", "env": [{"name": "B", "value": "3"}]}]}})
    assert e.value.status == 422


def test_status_patch_merges_conditions_by_type(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p"))
    cond = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no GPU"}
    v1.patch_namespaced_pod_status("p", "default", {"status": {"conditions": [cond]}})
    v1.patch_namespaced_pod_status("p", "default", {"status": {"conditions": [
        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]}})
    patched = v1.patch_namespaced_pod_status("p", "default", {"status": {"conditions": [
        {"type": "PodScheduled", "status": "True"}]}})
    assert [(c.type, c.status, c.reason) for c in patched.status.conditions] == [
        ("PodScheduled", "True", "Unschedulable"), ("DisruptionTarget", "True", "PreemptionByScheduler")]


def test_merge_patch_replaces_lists_and_null_deletes(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", two_container_pod("p"))
    patched = v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"a": None, "c": "3"}}},
                                      _content_type="application/merge-patch+json")
    assert patched.metadata.labels == {"c": "3"}
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm", "finalizers": ["x/a", "x/b"]}})
    cm = v1.patch_namespaced_config_map("cm", "default", {"metadata": {"finalizers": ["x/c"]}},
                                        _content_type="application/merge-patch+json")
    assert cm.metadata.finalizers == ["x/c"]


def test_json_patch_from_a_list_body(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"k": "1"}})
    cm = v1.patch_namespaced_config_map("cm", "default", [
        {"op": "replace", "path": "/data/k", "value": "2"},
        {"op": "add", "path": "/data/new", "value": "3"},
    ])
    assert cm.data == {"k": "2", "new": "3"}
    assert kube_emulator.requests_for(verb="patch")[-1].content_type == "application/json-patch+json"
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("cm", "default", [{"op": "test", "path": "/data/k", "value": "9"}])
    assert e.value.status == 422


def test_patch_carrying_a_stale_resource_version_is_409(kube_client):
    v1 = client.CoreV1Api(kube_client)
    cm = v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"k": "1"}})
    v1.patch_namespaced_config_map("cm", "default", {"data": {"k": "2"}})
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("cm", "default", {"metadata": {"resourceVersion": cm.metadata.resource_version},
                                                         "data": {"k": "3"}})
    assert e.value.status == 409
    assert v1.read_namespaced_config_map("cm", "default").data == {"k": "2"}


def test_node_annotations_and_status_patches(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.add_node("gpu-1", capacity={"nvidia.com/gpu": "8"})
    node = v1.patch_node("gpu-1", {"metadata": {"annotations": {"runai-lite/mig-desired": "[]"}}})
    assert node.metadata.annotations["runai-lite/mig-desired"] == "[]"
    node = v1.patch_node_status("gpu-1", {"status": {"capacity": {"nvidia.com/mig-1g.10gb": "2"}}})
    assert node.status.capacity["nvidia.com/mig-1g.10gb"] == "2" and node.status.capacity["nvidia.com/gpu"] == "8"


def test_patching_a_missing_object_is_404_and_apply_patch_is_415(kube_client):
    v1 = client.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("nope", "default", {"data": {}})
    assert e.value.status == 404
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_config_map("cm", "default", {"data": {}}, _content_type="application/apply-patch+yaml")
    assert e.value.status == 415


# ---- the patch functions on their own -------------------------------------------------------------

def test_merge_patch_rfc7386():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == \
        {"a": {"c": 2, "d": 3}, "l": [2]}


def test_strategic_merge_directives():
    original = {"spec": {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]},
                "metadata": {"finalizers": ["x/a", "x/b"]}}
    patched = strategic_merge_patch(original, {
        "spec": {"volumes": [{"name": "a", "$patch": "delete"}, {"name": "c", "hostPath": {"path": "/c"}}]},
        "metadata": {"finalizers": ["x/c"], "$deleteFromPrimitiveList/finalizers": ["x/a"]},
    })
    assert [v["name"] for v in patched["spec"]["volumes"]] == ["b", "c"]
    assert patched["metadata"]["finalizers"] == ["x/b", "x/c"]
    replaced = strategic_merge_patch({"data": {"a": "1", "b": "2"}}, {"data": {"$patch": "replace", "c": "3"}})
    assert replaced == {"data": {"c": "3"}}
    retained = strategic_merge_patch({"s": {"a": 1, "b": 2}}, {"s": {"$retainKeys": ["c"], "c": 3}})
    assert retained == {"s": {"c": 3}}


def test_strategic_merge_replaces_lists_without_a_merge_key():
    original = {"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "m", "args": ["x", "y"]}]}}
    patched = strategic_merge_patch(original, {"spec": {"tolerations": [{"key": "b"}],
                                                        "containers": [{"name": "m", "args": ["z"]}]}})
    assert patched["spec"] == {"tolerations": [{"key": "b"}], "containers": [{"name": "m", "args": ["z"]}]}
