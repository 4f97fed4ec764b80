"""CustomResourceDefinitions through the real client: a created CRD is served as the apiextensions API
server serves it (CRUD, selectors, watch, patches, conflicts, status subresource, RBAC, discovery,
pruning and schema validation), and deleting it takes its objects with it."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL = "runai-lite.io", "v1", "gpuallocations"


def crd(scope: str = "Namespaced", status: bool = True) -> dict:
    version = {
        "name": VERSION, "served": True, "storage": True,
        "schema": {"openAPIV3Schema": {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "required": ["gpu"], "properties": {
                    "gpu": {"type": "integer", "minimum": 0},
                    "node": {"type": "string"},
                    "share": {"type": "string", "enum": ["whole", "fraction"]},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                }},
                "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
            },
        }},
    }
    if status:
        version["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PLURAL}.{GROUP}"},
            "spec": {"group": GROUP, "scope": scope, "versions": [version],
                     "names": {"plural": PLURAL, "singular": "gpuallocation", "kind": "GpuAllocation",
                               "shortNames": ["ga"]}}}


def allocation(name: str, gpu: int = 1, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GpuAllocation",
            "metadata": {"name": name, "labels": labels or {}}, "spec": {"gpu": gpu, **spec}}


@pytest.fixture
def custom(kube_client):
    client.ApiextensionsV1Api(kube_client).create_custom_resource_definition(crd())
    return client.CustomObjectsApi(kube_client)


def test_a_created_crd_is_established_and_served(kube_client, custom):
    stored = client.ApiextensionsV1Api(kube_client).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert {c.type: c.status for c in stored.status.conditions} == {"NamesAccepted": "True", "Established": "True"}
    assert stored.status.stored_versions == [VERSION]
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1", node="n1"))
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    assert got["spec"] == {"gpu": 1, "node": "n1"} and got["kind"] == "GpuAllocation"


def test_before_its_crd_exists_a_custom_resource_is_404(kube_client):
    with pytest.raises(ApiException) as e:
        client.CustomObjectsApi(kube_client).list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert e.value.status == 404


def test_lists_filter_by_label_and_span_namespaces(kube_emulator, custom):
    kube_emulator.create_namespace("other")
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1", labels={"t": "x"}))
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a2", labels={"t": "y"}))
    custom.create_namespaced_custom_object(GROUP, VERSION, "other", PLURAL, allocation("a3", labels={"t": "x"}))
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, label_selector="t=x")
    assert [o["metadata"]["name"] for o in listed["items"]] == ["a1"]
    everywhere = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, label_selector="t=x")
    assert sorted(o["metadata"]["name"] for o in everywhere["items"]) == ["a1", "a3"]
    assert everywhere["kind"] == "GpuAllocationList"


def test_a_stale_resource_version_is_409_conflict(custom):
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1"))
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1", {"spec": {"gpu": 2}})
    stale = {**created, "spec": {"gpu": 3}}
    with pytest.raises(ApiException) as e:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1", stale)
    assert e.value.status == 409 and json.loads(e.value.body)["reason"] == "Conflict"
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    assert got["spec"]["gpu"] == 2 and got["metadata"]["generation"] == 2


def test_status_subresource_owns_the_status(custom):
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                           {**allocation("a1"), "status": {"phase": "Bound"}})
    assert "status" not in custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "a1",
                                                 {"status": {"phase": "Bound"}})
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1",
                                          {"spec": {"gpu": 2}, "status": {"phase": "Forged"}})
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    assert got["status"] == {"phase": "Bound"} and got["spec"]["gpu"] == 2
    assert got["metadata"]["generation"] == 2  # a status write does not move the generation


def test_without_a_status_subresource_status_is_an_ordinary_field(kube_client):
    client.ApiextensionsV1Api(kube_client).create_custom_resource_definition(crd(status=False))
    custom = client.CustomObjectsApi(kube_client)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                           {**allocation("a1"), "status": {"phase": "Bound"}})
    assert custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")["status"] == {
        "phase": "Bound"}
    with pytest.raises(ApiException) as e:
        custom.get_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "a1")
    assert e.value.status == 404


def test_unknown_fields_are_pruned_with_a_warning_unless_preserved(kube_emulator, custom):
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL,
                                           allocation("a1", typo=1, extra={"anything": {"goes": 1}}))
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    assert got["spec"] == {"gpu": 1, "extra": {"anything": {"goes": 1}}}
    assert kube_emulator.warnings == ['GpuAllocation/a1: unknown field "spec.typo"']


@pytest.mark.parametrize("spec", [{"gpu": "one"}, {"gpu": -1}, {"gpu": 1, "share": "half"}, {"node": "n1"}])
def test_values_the_schema_forbids_are_422_invalid(custom, spec):
    body = {**allocation("bad"), "spec": spec}
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    assert e.value.status == 422 and json.loads(e.value.body)["reason"] == "Invalid"


def test_watch_streams_added_modified_deleted(kube_client, custom):
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1"))
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1", {"spec": {"gpu": 4}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")
    events = [(e["type"], e["object"]["spec"]["gpu"]) for e in watch.Watch().stream(
        custom.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
        resource_version=created["metadata"]["resourceVersion"], timeout_seconds=1)]
    assert events == [("MODIFIED", 4), ("DELETED", 4)]


def test_cluster_scoped_crd_is_served_without_a_namespace(kube_client):
    client.ApiextensionsV1Api(kube_client).create_custom_resource_definition(crd(scope="Cluster"))
    custom = client.CustomObjectsApi(kube_client)
    custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, allocation("a1"))
    assert "namespace" not in custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, "a1")["metadata"]
    with pytest.raises(ApiException) as e:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a2"))
    assert e.value.status == 404


def test_deleting_the_crd_deletes_its_objects_and_stops_serving(kube_emulator, kube_client, custom):
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1"))
    client.ApiextensionsV1Api(kube_client).delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(ApiException) as e:
        custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert e.value.status == 404
    client.ApiextensionsV1Api(kube_client).create_custom_resource_definition(crd())
    assert custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"] == []


def test_a_crd_whose_name_is_not_plural_dot_group_is_422(kube_client):
    body = crd()
    body["metadata"]["name"] = "allocations.example.com"
    with pytest.raises(ApiException) as e:
        client.ApiextensionsV1Api(kube_client).create_custom_resource_definition(body)
    assert e.value.status == 422


def test_discovery_lists_the_group_and_resource(kube_emulator, kube_client, custom):
    groups = client.ApisApi(kube_client).get_api_versions()
    assert GROUP in [g.name for g in groups.groups]
    with urllib.request.urlopen(f"{kube_emulator.url}/apis/{GROUP}/{VERSION}") as answer:
        resources = json.load(answer)
    assert {r["name"]: r["namespaced"] for r in resources["resources"]} == {PLURAL: True, f"{PLURAL}/status": True}


def test_rbac_applies_to_custom_resources_as_to_builtin_ones(kube_emulator, custom):
    kube_emulator.create("serviceaccounts", {"metadata": {"name": "reader"}}, "default")
    kube_emulator.create("roles", {"metadata": {"name": "read-allocations"}, "rules": [
        {"apiGroups": [GROUP], "resources": [PLURAL], "verbs": ["get", "list"]}]}, "default")
    kube_emulator.create("rolebindings", {"metadata": {"name": "reader"},
                                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                      "name": "read-allocations"},
                                          "subjects": [{"kind": "ServiceAccount", "name": "reader",
                                                        "namespace": "default"}]}, "default")
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1"))
    with kube_emulator.api_client(service_account="default/reader") as api:
        as_reader = client.CustomObjectsApi(api)
        assert as_reader.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1")["spec"]["gpu"] == 1
        with pytest.raises(ApiException) as e:
            as_reader.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "a1", {"spec": {"gpu": 0}})
        assert e.value.status == 403
        with pytest.raises(ApiException) as e:
            as_reader.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "a1",
                                                            {"status": {"phase": "x"}})
        assert e.value.status == 403


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_gets_custom_objects_by_plural_and_short_name(kube_emulator, custom, tmp_path):
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, allocation("a1"))
    kubeconfig = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig")
    for name in ("gpuallocations", "ga", f"{PLURAL}.{GROUP}"):
        out = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), "get", name, "-o", "json"],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert [o["metadata"]["name"] for o in json.loads(out.stdout)["items"]] == ["a1"]
