"""CRUD through the real kubernetes client over HTTP: identity fields, conflicts, errors, scopes, deletion."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator import KubeEmulator


def pod(name: str | None = None, *, generate: str | None = None, labels: dict | None = None, **spec) -> dict:
    meta = {"labels": labels or {}}
    if name:
        meta["name"] = name
    if generate:
        meta["generateName"] = generate
    return {"metadata": meta, "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


def status_of(e: ApiException) -> dict:
    return json.loads(e.body)


def test_create_assigns_identity_and_get_returns_the_same_object(kube_client):
    v1 = client.CoreV1Api(kube_client)
    created = v1.create_namespaced_pod("default", pod("p1"))
    assert created.metadata.uid and created.metadata.creation_timestamp is not None
    assert int(created.metadata.resource_version) > 0
    assert created.spec.scheduler_name == "default-scheduler" and created.status.phase == "Pending"
    got = v1.read_namespaced_pod("p1", "default")
    assert (got.metadata.uid, got.metadata.resource_version) == \
        (created.metadata.uid, created.metadata.resource_version)


def test_generate_name_makes_distinct_names_with_the_prefix(kube_client):
    v1 = client.CoreV1Api(kube_client)
    names = {v1.create_namespaced_pod("default", pod(generate="worker-")).metadata.name for _ in range(5)}
    assert len(names) == 5 and all(n.startswith("worker-") and len(n) == len("worker-") + 5 for n in names)


def test_resource_version_is_a_global_counter(kube_client):
    v1 = client.CoreV1Api(kube_client)
    a = v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}, "data": {"k": "1"}})
    b = v1.create_namespaced_pod("default", pod("b"))
    assert int(b.metadata.resource_version) == int(a.metadata.resource_version) + 1


def test_duplicate_create_is_409_already_exists(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_pod("default", pod("dup"))
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("dup"))
    assert e.value.status == 409
    assert status_of(e.value)["reason"] == "AlreadyExists" and status_of(e.value)["kind"] == "Status"


def test_missing_object_is_404_not_found_status(kube_client):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(kube_client).read_namespaced_pod("nope", "default")
    body = status_of(e.value)
    assert e.value.status == 404
    assert body == {**body, "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                    "message": 'pods "nope" not found'}


def test_update_with_stale_resource_version_is_409_and_changes_nothing(kube_client):
    v1 = client.CoreV1Api(kube_client)
    first = v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"v": "1"}})
    first.data = {"v": "2"}
    second = v1.replace_namespaced_config_map("cm", "default", first)
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    first.data = {"v": "3"}  # still carries the first resourceVersion
    with pytest.raises(ApiException) as e:
        v1.replace_namespaced_config_map("cm", "default", first)
    assert e.value.status == 409 and status_of(e.value)["reason"] == "Conflict"
    assert v1.read_namespaced_config_map("cm", "default").data == {"v": "2"}


def test_update_without_resource_version_is_unconditional(kube_client):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"v": "1"}})
    v1.replace_namespaced_config_map("cm", "default", {"metadata": {"name": "cm"}, "data": {"v": "9"}})
    assert v1.read_namespaced_config_map("cm", "default").data == {"v": "9"}


def test_noop_update_keeps_the_resource_version(kube_client):
    v1 = client.CoreV1Api(kube_client)
    cm = v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}, "data": {"v": "1"}})
    again = v1.replace_namespaced_config_map("cm", "default", cm)
    assert again.metadata.resource_version == cm.metadata.resource_version


def test_cluster_scoped_create_list_and_delete(kube_client):
    scheduling = client.SchedulingV1Api(kube_client)
    created = scheduling.create_priority_class({"metadata": {"name": "train"}, "value": 50})
    assert created.metadata.namespace is None and created.value == 50
    names = [pc.metadata.name for pc in scheduling.list_priority_class().items]
    assert "train" in names
    scheduling.delete_priority_class("train")
    with pytest.raises(ApiException) as e:
        scheduling.read_priority_class("train")
    assert e.value.status == 404


def test_create_in_a_missing_namespace_is_404(kube_client):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(kube_client).create_namespaced_pod("runai-ghost", pod("p"))
    assert e.value.status == 404 and 'namespaces "runai-ghost" not found' in status_of(e.value)["message"]


def test_namespace_gets_its_name_label_and_deleting_it_deletes_its_objects(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    ns = v1.create_namespace({"metadata": {"name": "runai-team", "labels": {"runai/queue": "team"}}})
    assert ns.metadata.labels == {"runai/queue": "team", "kubernetes.io/metadata.name": "runai-team"}
    assert ns.status.phase == "Active"
    v1.create_namespaced_pod("runai-team", pod("p"))
    v1.create_namespaced_config_map("runai-team", {"metadata": {"name": "cm"}})
    v1.delete_namespace("runai-team")
    assert kube_emulator.objects("pods", "runai-team") == []
    assert kube_emulator.objects("configmaps", "runai-team") == []
    assert kube_emulator.get("namespaces", "runai-team") is None


def test_list_across_namespaces_and_list_items_carry_no_kind(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    kube_emulator.create_namespace("a")
    kube_emulator.create_namespace("b")
    v1.create_namespaced_pod("a", pod("p"))
    v1.create_namespaced_pod("b", pod("p"))
    listed = v1.list_pod_for_all_namespaces()
    assert [(p.metadata.namespace, p.metadata.name) for p in listed.items] == [("a", "p"), ("b", "p")]
    assert int(listed.metadata.resource_version) == kube_emulator.resource_version
    assert [p.metadata.namespace for p in v1.list_namespaced_pod("b").items] == ["b"]
    assert all(p.kind is None for p in listed.items)


def test_limit_and_continue_page_through_a_list(kube_client):
    v1 = client.CoreV1Api(kube_client)
    for n in range(5):
        v1.create_namespaced_config_map("default", {"metadata": {"name": f"cm{n}"}})
    seen, token = [], None
    while True:
        page = v1.list_namespaced_config_map("default", limit=2, _continue=token)
        seen += [c.metadata.name for c in page.items]
        token = page.metadata._continue
        if not token:
            break
    assert seen == [f"cm{n}" for n in range(5)]


def test_the_pages_of_a_list_report_its_first_version_and_what_remains(kube_client):
    v1 = client.CoreV1Api(kube_client)
    for n in range(5):
        v1.create_namespaced_config_map("default", {"metadata": {"name": f"cm{n}"}})
    first = v1.list_namespaced_config_map("default", limit=2)
    assert first.metadata.remaining_item_count == 3
    v1.create_namespaced_config_map("default", {"metadata": {"name": "other"}})  # the version moves on
    second = v1.list_namespaced_config_map("default", limit=2, _continue=first.metadata._continue)
    assert second.metadata.resource_version == first.metadata.resource_version
    assert [c.metadata.name for c in second.items] == ["cm2", "cm3"]


def test_a_continue_token_older_than_the_compacted_history_is_410(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    for n in range(3):
        v1.create_namespaced_config_map("default", {"metadata": {"name": f"cm{n}"}})
    token = v1.list_namespaced_config_map("default", limit=1).metadata._continue
    v1.create_namespaced_config_map("default", {"metadata": {"name": "later"}})
    kube_emulator.compact()
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_config_map("default", limit=1, _continue=token)
    assert e.value.status == 410 and "continue" in e.value.body
    with pytest.raises(ApiException) as e:
        v1.list_namespaced_config_map("default", limit=1, _continue="not a token")
    assert e.value.status == 400


def test_wrong_kind_in_body_is_400(kube_client):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(kube_client).create_namespaced_config_map(
            "default", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}})
    assert e.value.status == 400


@pytest.mark.parametrize("labels", [{"runai/queue": "a b"}, {"bad key!": "x"}, {"k": "x" * 64}])
def test_invalid_labels_are_422(kube_client, labels):
    with pytest.raises(ApiException) as e:
        client.CoreV1Api(kube_client).create_namespaced_config_map(
            "default", {"metadata": {"name": "cm", "labels": labels}})
    assert e.value.status == 422 and status_of(e.value)["reason"] == "Invalid"


def test_invalid_names_are_422(kube_client):
    v1 = client.CoreV1Api(kube_client)
    for bad in ("Upper", "under_score", "x" * 254):
        with pytest.raises(ApiException) as e:
            v1.create_namespaced_config_map("default", {"metadata": {"name": bad}})
        assert e.value.status == 422
    with pytest.raises(ApiException) as e:
        v1.create_namespace({"metadata": {"name": "dots.are.not.labels"}})
    assert e.value.status == 422


def test_main_resource_ignores_status_and_status_subresource_ignores_the_rest(kube_client):
    v1 = client.CoreV1Api(kube_client)
    created = v1.create_namespaced_pod("default", pod("p", labels={"a": "1"}))
    body = created.to_dict(serialize=True)
    body["status"] = {"phase": "Running"}
    body["metadata"]["labels"] = {"a": "2"}
    updated = v1.replace_namespaced_pod("p", "default", body)
    assert updated.status.phase == "Pending" and updated.metadata.labels == {"a": "2"}
    body = updated.to_dict(serialize=True)
    body["status"] = {"phase": "Running"}
    body["metadata"]["labels"] = {"a": "3"}
    status_updated = v1.replace_namespaced_pod_status("p", "default", body)
    assert status_updated.status.phase == "Running" and status_updated.metadata.labels == {"a": "2"}


def test_pod_spec_is_immutable_except_images(kube_client):
    v1 = client.CoreV1Api(kube_client)
    created = v1.create_namespaced_pod("default", pod("p")).to_dict(serialize=True)
    created["spec"]["containers"][0]["image"] = "busybox:2"
    assert v1.replace_namespaced_pod("p", "default", created).spec.containers[0].image == "busybox:2"
    with pytest.raises(ApiException) as e:
        v1.patch_namespaced_pod("p", "default", {"spec": {"nodeName": "n1"}})
    assert e.value.status == 422


def test_pod_priority_comes_from_its_priority_class(kube_client):
    v1 = client.CoreV1Api(kube_client)
    client.SchedulingV1Api(kube_client).create_priority_class({"metadata": {"name": "build"}, "value": 100})
    created = v1.create_namespaced_pod("default", pod("p", priorityClassName="build"))
    assert created.spec.priority == 100
    with pytest.raises(ApiException) as e:
        v1.create_namespaced_pod("default", pod("q", priorityClassName="missing"))
    assert e.value.status == 403


def test_job_gets_defaults_selector_and_template_labels(kube_client):
    batch = client.BatchV1Api(kube_client)
    job = batch.create_namespaced_job("default", {
        "metadata": {"name": "train"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}},
    })
    assert (job.spec.completions, job.spec.parallelism, job.spec.backoff_limit) == (1, 1, 6)
    assert job.spec.template.metadata.labels["job-name"] == "train"
    assert job.spec.selector.match_labels == {"batch.kubernetes.io/controller-uid": job.metadata.uid}
    with pytest.raises(ApiException) as e:
        batch.create_namespaced_job("default", {
            "metadata": {"name": "bad"},
            "spec": {"template": {"spec": {"containers": [{"name": "m", "image": "i"}]}}},  # restartPolicy Always
        })
    assert e.value.status == 422


def _job_with_pod(emulator: KubeEmulator, name: str) -> None:
    emulator.create("jobs.batch", {"metadata": {"name": name}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}}})
    emulator.job_controller.sync()


def test_deleting_a_job_orphans_its_pods_by_default_as_batch_v1_does(kube_client, kube_emulator):
    _job_with_pod(kube_emulator, "j")
    client.BatchV1Api(kube_client).delete_namespaced_job("j", "default")
    (orphan,) = kube_emulator.objects("pods", "default")
    assert orphan["metadata"]["ownerReferences"] == []


def test_deleting_a_job_in_background_deletes_its_pods(kube_client, kube_emulator):
    _job_with_pod(kube_emulator, "j")
    client.BatchV1Api(kube_client).delete_namespaced_job("j", "default", propagation_policy="Background")
    assert kube_emulator.objects("pods", "default") == []


def test_delete_preconditions_and_deleted_object_answers(kube_client):
    v1 = client.CoreV1Api(kube_client)
    created = v1.create_namespaced_pod("default", pod("p"))
    with pytest.raises(ApiException) as e:
        v1.delete_namespaced_pod("p", "default", body={"preconditions": {"uid": "other"}})
    assert e.value.status == 409
    deleted = v1.delete_namespaced_pod("p", "default", body={"preconditions": {"uid": created.metadata.uid}})
    assert deleted.metadata.name == "p"  # pods answer DELETE with the object (the client expects a V1Pod)
    status = client.CoreV1Api(kube_client).delete_namespaced_config_map  # others answer a Status
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm"}})
    assert status("cm", "default")["status"] == "Success"


def test_finalizers_hold_deletion_until_removed(kube_client, kube_emulator):
    v1 = client.CoreV1Api(kube_client)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "cm", "finalizers": ["example.com/hold"]}})
    v1.delete_namespaced_config_map("cm", "default")
    held = v1.read_namespaced_config_map("cm", "default")
    assert held.metadata.deletion_timestamp is not None
    v1.patch_namespaced_config_map("cm", "default", {"metadata": {"finalizers": None}})
    assert kube_emulator.get("configmaps", "cm", "default") is None


def test_leases_for_leader_election(kube_client):
    coordination = client.CoordinationV1Api(kube_client)
    lease = coordination.create_namespaced_lease("kube-system", {
        "metadata": {"name": "runai-lite-controller"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    })
    lease.spec.holder_identity = "b"
    renewed = coordination.replace_namespaced_lease("runai-lite-controller", "kube-system", lease)
    lease.spec.holder_identity = "c"  # a contender holding the old version loses
    with pytest.raises(ApiException) as e:
        coordination.replace_namespaced_lease("runai-lite-controller", "kube-system", lease)
    assert e.value.status == 409
    assert coordination.read_namespaced_lease("runai-lite-controller", "kube-system").spec.holder_identity == "b"
    assert renewed.metadata.resource_version != lease.metadata.resource_version


def test_kubeconfig_loads_with_the_standard_loader(kube_emulator, kubeconfig):
    api = client.ApiClient()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=api.configuration, context="emulator")
    assert api.configuration.host == kube_emulator.url
    assert [n.metadata.name for n in client.CoreV1Api(api).list_namespace().items][0] == "default"
    assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"


def test_discovery_lists_groups_and_resources(kube_client):
    groups = {g.name for g in client.ApisApi(kube_client).get_api_versions().groups}
    assert {"batch", "coordination.k8s.io", "scheduling.k8s.io", "events.k8s.io"} <= groups
    resources = {r.name for r in client.CoreV1Api(kube_client).get_api_resources().resources}
    assert {"pods", "pods/binding", "pods/eviction", "pods/log", "nodes", "namespaces"} <= resources
    assert client.VersionApi(kube_client).get_code().major == "1"
