"""Smaller API semantics: dryRun, generation, collections, default priority, namespaces being deleted."""

from __future__ import annotations

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator_tests.test_kube_emulator_crud import pod
from tests.kube_emulator_tests.test_kube_emulator_pods import binding


def test_dry_run_validates_without_storing(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    before = kube_emulator.resource_version
    answered = v1.create_namespaced_pod("default", pod("p"), dry_run="All")
    assert answered.metadata.name == "p" and kube_emulator.get("pods", "p", "default") is None
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("Bad_Name"), dry_run="All")
    assert e.value.status == 422
    v1.create_namespaced_pod("default", pod("p"))
    v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"x": "1"}}}, dry_run="All")
    v1.delete_namespaced_pod("p", "default", dry_run="All")
    assert kube_emulator.get("pods", "p", "default")["metadata"].get("labels") == {}
    assert kube_emulator.resource_version == before + 1


def test_generation_moves_with_the_spec_only(kube_client):
    apps = client.AppsV1Api(kube_client)
    template = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "m", "image": "i"}]}}
    d = apps.create_namespaced_deployment("default", {"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "1"}}, "template": template}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("d", "default", {"metadata": {"labels": {"x": "y"}}})
    assert d.metadata.generation == 1
    d = apps.patch_namespaced_deployment("d", "default", {"spec": {"replicas": 3}})
    assert d.metadata.generation == 2


def test_delete_collection_with_a_label_selector(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    for name, team in (("a", "x"), ("b", "x"), ("c", "y")):
        v1.create_namespaced_pod("default", pod(name, labels={"team": team}))
    v1.delete_collection_namespaced_pod("default", label_selector="team=x")
    assert [p["metadata"]["name"] for p in kube_emulator.objects("pods")] == ["c"]


def test_global_default_priority_class_applies_to_pods_without_one(kube_client):
    client.SchedulingV1Api(kube_client).create_priority_class(
        {"metadata": {"name": "everyone"}, "value": 7, "globalDefault": True})
    created = client.CoreV1Api(kube_client).create_namespaced_pod("default", pod("p"))
    assert (created.spec.priority_class_name, created.spec.priority) == ("everyone", 7)


def test_binding_copies_its_annotations_to_the_pod(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("p"))
    body = binding("p", "n1")
    body["metadata"]["annotations"] = {"runai-lite/bound-by": "controller"}
    v1.create_namespaced_pod_binding("p", "default", body, _preload_content=False)
    assert v1.read_namespaced_pod("p", "default").metadata.annotations == {"runai-lite/bound-by": "controller"}


def test_a_namespace_held_by_a_finalizer_refuses_new_content(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespace({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})
    v1.delete_namespace("held")
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_config_map("held", {"metadata": {"name": "cm"}})
    assert e.value.status == 403


def test_a_suspended_jobs_template_may_change_and_a_running_ones_may_not(kube_client):
    batch = client.BatchV1Api(kube_client)
    spec = {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}}
    batch.create_namespaced_job("default", {"metadata": {"name": "held"}, "spec": {**spec, "suspend": True}})
    batch.create_namespaced_job("default", {"metadata": {"name": "running"}, "spec": spec})
    change = {"spec": {"template": {"metadata": {"annotations": {"gpu-fraction": "0.5"}}}}}
    assert batch.patch_namespaced_job("held", "default", change).spec.template.metadata.annotations
    with pytest.raises(ApiException) as e:
        batch.patch_namespaced_job("running", "default", change)
    assert e.value.status == 422


def test_orphan_dependents_and_owner_garbage_collection_across_kinds(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    owner = v1.create_namespaced_pod("default", pod("owner"))
    ref = {"apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": owner.metadata.uid}
    v1.create_namespaced_config_map("default", {"metadata": {"name": "env", "ownerReferences": [ref]}})
    v1.delete_namespaced_pod("owner", "default")  # Background by default: the ConfigMap goes too
    assert kube_emulator.get("configmaps", "env", "default") is None
    owner = v1.create_namespaced_pod("default", pod("owner"))
    ref["uid"] = owner.metadata.uid
    v1.create_namespaced_config_map("default", {"metadata": {"name": "env", "ownerReferences": [ref]}})
    v1.delete_namespaced_pod("owner", "default", orphan_dependents=True)
    assert kube_emulator.get("configmaps", "env", "default")["metadata"]["ownerReferences"] == []


def test_subresources_serve_only_their_verbs(kube_emulator):
    kube_emulator.create("pods", pod("p"), "default")
    base = f"{kube_emulator.url}/api/v1/namespaces/default/pods/p"
    assert urllib3.request("DELETE", f"{base}/status").status == 405
    assert urllib3.request("PUT", f"{base}/binding", json={"target": {"name": "n"}}).status == 405
    assert urllib3.request("GET", f"{base}/eviction").status == 405
    assert urllib3.request("GET", f"{base}/exec").status == 404
    assert kube_emulator.get("pods", "p", "default")["spec"].get("nodeName") is None
