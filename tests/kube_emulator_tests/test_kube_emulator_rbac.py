"""RBAC for clients acting as a service account, decided from the stored Roles and bindings."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator import KubeEmulator
from tests.kube_emulator.rbac import Attributes, rule_allows
from tests.kube_emulator_tests.test_kube_emulator_crud import pod
from tests.kube_emulator_tests.test_kube_emulator_pods import bind

SA = "runai-lite/controller"
SA_SUBJECT = {"kind": "ServiceAccount", "name": "controller", "namespace": "runai-lite"}


def grant_cluster(kube: KubeEmulator, name: str, rules: list[dict], subject: dict = SA_SUBJECT) -> None:
    kube.create("clusterroles", {"metadata": {"name": name}, "rules": rules})
    kube.create("clusterrolebindings", {"metadata": {"name": name}, "subjects": [subject],
                                        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                    "name": name}})


def grant_namespace(kube: KubeEmulator, namespace: str, name: str, rules: list[dict]) -> None:
    kube.create("roles", {"metadata": {"name": name}, "rules": rules}, namespace)
    kube.create("rolebindings", {"metadata": {"name": name}, "subjects": [SA_SUBJECT],
                                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}},
                namespace)


@pytest.fixture
def sa_core(kube_emulator):
    kube_emulator.create_namespace("runai-lite")
    with kube_emulator.api_client(service_account=SA) as api:
        yield client.CoreV1Api(api)


def test_without_any_binding_a_service_account_is_forbidden(sa_core, kube_emulator):
    with pytest.raises(ApiException) as e:
        sa_core.list_namespaced_pod("default")
    assert e.value.status == 403
    assert json.loads(e.value.body)["message"] == (
        'pods is forbidden: User "system:serviceaccount:runai-lite:controller" cannot list resource "pods" '
        'in API group "" in the namespace "default"')
    (request,) = kube_emulator.requests
    assert (request.status, request.user) == (403, "system:serviceaccount:runai-lite:controller")


def test_a_role_grants_only_in_its_namespace(sa_core, kube_emulator):
    kube_emulator.create_namespace("other")
    grant_namespace(kube_emulator, "default", "pods", [{"apiGroups": [""], "resources": ["pods"],
                                                       "verbs": ["get", "list", "watch", "create"]}])
    sa_core.create_namespaced_pod("default", pod("p"))
    assert [p.metadata.name for p in sa_core.list_namespaced_pod("default").items] == ["p"]
    for forbidden in (lambda: sa_core.list_namespaced_pod("other"), sa_core.list_pod_for_all_namespaces,
                      lambda: sa_core.delete_namespaced_pod("p", "default")):
        with pytest.raises(ApiException) as e:
            forbidden()
        assert e.value.status == 403


def test_subresources_need_their_own_rules(sa_core, kube_emulator):
    kube_emulator.create("pods", pod("p"), "default")
    grant_cluster(kube_emulator, "pods", [{"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}])
    with pytest.raises(ApiException) as e:
        bind(sa_core, "p", "n1")
    assert e.value.status == 403 and 'cannot create resource "pods/binding"' in json.loads(e.value.body)["message"]
    grant_cluster(kube_emulator, "binder", [{"apiGroups": [""], "resources": ["pods/binding", "pods/eviction"],
                                             "verbs": ["create"]}])
    assert bind(sa_core, "p", "n1") == 201


def test_cluster_role_through_a_role_binding_and_resource_names(sa_core, kube_emulator):
    kube_emulator.create("clusterroles", {"metadata": {"name": "lease"}, "rules": [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"],
         "resourceNames": ["runai-lite-controller"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]})
    kube_emulator.create("rolebindings", {"metadata": {"name": "lease"}, "subjects": [SA_SUBJECT], "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "lease"}}, "runai-lite")
    with kube_emulator.api_client(service_account=SA) as api:
        leases = client.CoordinationV1Api(api)
        for name in ("runai-lite-controller", "someone-else"):
            leases.create_namespaced_lease("runai-lite", {"metadata": {"name": name}, "spec": {}})
        assert leases.read_namespaced_lease("runai-lite-controller", "runai-lite").metadata.name
        with pytest.raises(ApiException) as e:
            leases.read_namespaced_lease("someone-else", "runai-lite")
        assert e.value.status == 403
        with pytest.raises(ApiException) as e:
            leases.create_namespaced_lease("default", {"metadata": {"name": "x"}, "spec": {}})
        assert e.value.status == 403


def test_group_subjects_and_the_admin_client(kube_emulator, kube_client):
    kube_emulator.create_namespace("runai-lite")
    grant_cluster(kube_emulator, "nodes", [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["list"]}],
                  {"kind": "Group", "name": "system:serviceaccounts:runai-lite"})
    with kube_emulator.api_client(service_account="runai-lite/anyone") as api:
        assert client.CoreV1Api(api).list_node().items == []
    with kube_emulator.api_client(service_account="default/outsider") as api, pytest.raises(ApiException):
        client.CoreV1Api(api).list_node()
    assert client.CoreV1Api(kube_client).list_namespaced_pod("default").items == []  # admin: no RBAC


@pytest.mark.parametrize("rule, allowed", [
    ({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, True),
    ({"apiGroups": [""], "resources": ["pods/*"], "verbs": ["create"]}, True),
    ({"apiGroups": [""], "resources": ["*/binding"], "verbs": ["create"]}, True),
    ({"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}, False),
    ({"apiGroups": ["batch"], "resources": ["pods/binding"], "verbs": ["create"]}, False),
    ({"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"], "resourceNames": ["p"]}, True),
    ({"apiGroups": [""], "resources": ["pods/binding"], "verbs": ["create"], "resourceNames": ["q"]}, False),
])
def test_rule_matching(rule, allowed):
    assert rule_allows(rule, Attributes("create", "", "pods", "binding", "default", "p")) is allowed
