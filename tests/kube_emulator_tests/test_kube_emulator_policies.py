"""ValidatingAdmissionPolicy through the real client: a bound policy's CEL validations are evaluated on
every matching write with `object`, `oldObject` and `request.userInfo`, as the API server does."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube_emulator import standalone

CONTROLLER = "system:serviceaccount:runai-lite:runai-lite-controller"
PROTECT = {
    "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
    "metadata": {"name": "protect-runai-lite-metadata"},
    "spec": {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                "operations": ["CREATE", "UPDATE"], "resources": ["pods"]}]},
        "matchConditions": [{"name": "not-the-controller",
                             "expression": f"request.userInfo.username != '{CONTROLLER}'"}],
        "variables": [
            {"name": "mine", "expression": "has(object.metadata.annotations) ? object.metadata.annotations.filter("
                                           "k, k.startsWith('runai-lite/')).map(k, k + '=' + "
                                           "object.metadata.annotations[k]) : []"},
            {"name": "theirs", "expression": "oldObject != null && has(oldObject.metadata.annotations) ? "
                                             "oldObject.metadata.annotations.filter(k, k.startsWith('runai-lite/'))"
                                             ".map(k, k + '=' + oldObject.metadata.annotations[k]) : []"},
        ],
        "validations": [{
            "expression": "variables.mine.all(a, a in variables.theirs) && variables.theirs.all(a, a in variables.mine)",
            "messageExpression": "'only the controller may set runai-lite/ annotations, not ' + "
                                 "request.userInfo.username",
            "reason": "Forbidden",
        }],
    },
}


def binding(policy: str = "protect-runai-lite-metadata", actions: list | None = None, **match) -> dict:
    spec = {"policyName": policy, "validationActions": actions or ["Deny"]}
    if match:
        spec["matchResources"] = match
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": f"{policy}-binding"}, "spec": spec}


def pod(name: str, annotations: dict | None = None) -> dict:
    return {"metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}}


@pytest.fixture
def tenant(kube_emulator):
    """A client acting as a tenant's service account allowed to write pods in `default`."""
    kube_emulator.create("serviceaccounts", {"metadata": {"name": "alice"}}, "default")
    kube_emulator.create("roles", {"metadata": {"name": "pods"}, "rules": [
        {"apiGroups": [""], "resources": ["pods", "pods/status"], "verbs": ["*"]}]}, "default")
    kube_emulator.create("rolebindings", {"metadata": {"name": "alice"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"}, "subjects": [
        {"kind": "ServiceAccount", "name": "alice", "namespace": "default"}]}, "default")
    with kube_emulator.api_client(service_account="default/alice") as api:
        yield client.CoreV1Api(api)


def install(kube, *objects) -> None:
    standalone.install(kube, objects)


def test_a_bound_policy_denies_a_tenant_forging_an_annotation(kube_emulator, tenant):
    install(kube_emulator, PROTECT, binding())
    with pytest.raises(ApiException) as e:
        tenant.create_namespaced_pod("default", pod("forged", {"runai-lite/allocation": "gpu=0"}))
    assert e.value.status == 403
    message = json.loads(e.value.body)["message"]
    assert message == ("ValidatingAdmissionPolicy 'protect-runai-lite-metadata' with binding "
                       "'protect-runai-lite-metadata-binding' denied request: only the controller may set runai-lite/ "
                       "annotations, not system:serviceaccount:default:alice")
    assert kube_emulator.get("pods", "forged", "default") is None
    tenant.create_namespaced_pod("default", pod("plain", {"team": "a"}))  # other annotations are fine


def test_old_object_is_seen_on_update_so_removing_an_annotation_is_denied(kube_emulator, tenant):
    kube_emulator.create("pods", pod("p", {"runai-lite/allocation": "gpu=0"}))  # before the policy
    install(kube_emulator, PROTECT, binding())
    with pytest.raises(ApiException) as e:
        tenant.patch_namespaced_pod("p", "default", {"metadata": {"annotations": {"runai-lite/allocation": None}}})
    assert e.value.status == 403
    assert kube_emulator.get("pods", "p", "default")["metadata"]["annotations"] == {"runai-lite/allocation": "gpu=0"}
    tenant.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"x": "y"}}})  # unrelated: allowed


def test_the_controller_service_account_is_let_through_by_the_match_condition(kube_emulator):
    install(kube_emulator, PROTECT, binding())
    kube_emulator.create_namespace("runai-lite")
    kube_emulator.create("serviceaccounts", {"metadata": {"name": "runai-lite-controller"}}, "runai-lite")
    kube_emulator.create("clusterrolebindings", {"metadata": {"name": "c"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "all"}, "subjects": [
        {"kind": "ServiceAccount", "name": "runai-lite-controller", "namespace": "runai-lite"}]})
    kube_emulator.create("clusterroles", {"metadata": {"name": "all"}, "rules": [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})
    with kube_emulator.api_client(service_account="runai-lite/runai-lite-controller") as api:
        client.CoreV1Api(api).create_namespaced_pod("default", pod("p", {"runai-lite/allocation": "gpu=0"}))
    assert kube_emulator.get("pods", "p", "default") is not None


def test_a_policy_without_a_binding_does_nothing(kube_emulator, tenant):
    install(kube_emulator, PROTECT)
    tenant.create_namespaced_pod("default", pod("p", {"runai-lite/allocation": "gpu=0"}))


def test_binding_match_resources_narrow_by_namespace_selector(kube_emulator, tenant):
    kube_emulator.create_namespace("runai-team-a", labels={"runai/queue": "team-a"})
    kube_emulator.create("rolebindings", {"metadata": {"name": "alice"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit-pods"}, "subjects": [
        {"kind": "ServiceAccount", "name": "alice", "namespace": "default"}]}, "runai-team-a")
    kube_emulator.create("clusterroles", {"metadata": {"name": "edit-pods"}, "rules": [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["*"]}]})
    install(kube_emulator, PROTECT, binding(namespaceSelector={"matchExpressions": [
        {"key": "runai/queue", "operator": "Exists"}]}))
    tenant.create_namespaced_pod("default", pod("p", {"runai-lite/allocation": "gpu=0"}))  # not a project
    with pytest.raises(ApiException) as e:
        tenant.create_namespaced_pod("runai-team-a", pod("q", {"runai-lite/allocation": "gpu=0"}))
    assert e.value.status == 403


def test_warn_action_answers_a_warning_and_allows(kube_emulator, tenant):
    install(kube_emulator, PROTECT, binding(actions=["Warn"]))
    _, status, headers = tenant.create_namespaced_pod_with_http_info(
        "default", pod("p", {"runai-lite/allocation": "gpu=0"}))
    assert status == 201 and "denied request" in headers["Warning"]
    assert kube_emulator.get("pods", "p", "default") is not None


@pytest.mark.parametrize("failure_policy, allowed", [("Fail", False), ("Ignore", True)])
def test_an_expression_error_follows_the_failure_policy(kube_emulator, tenant, failure_policy, allowed):
    broken = json.loads(json.dumps(PROTECT))
    broken["spec"].update(failurePolicy=failure_policy, matchConditions=[],
                          validations=[{"expression": "object.spec.noSuchField == 1"}])
    install(kube_emulator, broken, binding())
    if allowed:
        tenant.create_namespaced_pod("default", pod("p"))
    else:
        with pytest.raises(ApiException) as e:
            tenant.create_namespaced_pod("default", pod("p"))
        assert e.value.status == 403 and "resulted in error" in json.loads(e.value.body)["message"]
    assert (kube_emulator.get("pods", "p", "default") is not None) is allowed


def test_delete_sees_the_old_object_and_subresources_match_by_name(kube_emulator, tenant):
    no_delete = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                 "metadata": {"name": "keep-held"}, "spec": {
                     "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                             "operations": ["DELETE", "UPDATE"],
                                                             "resources": ["pods", "pods/status"]}]},
                     "validations": [{"expression": "request.operation == 'UPDATE' ? request.subResource == '' : "
                                                    "!has(oldObject.metadata.labels) || "
                                                    "!('held' in oldObject.metadata.labels)",
                                      "message": "held", "reason": "Invalid"}]}}
    install(kube_emulator, no_delete, binding("keep-held"))
    kube_emulator.create("pods", {**pod("p"), "metadata": {"name": "p", "labels": {"held": "yes"}}}, "default")
    with pytest.raises(ApiException) as e:
        tenant.delete_namespaced_pod("p", "default")
    assert e.value.status == 422 and json.loads(e.value.body)["reason"] == "Invalid"
    with pytest.raises(ApiException) as e:
        tenant.patch_namespaced_pod_status("p", "default", {"status": {"phase": "Failed"}})
    assert e.value.status == 422
    assert kube_emulator.get("pods", "p", "default")["status"]["phase"] == "Pending"


@pytest.mark.parametrize("expression", [
    "oldObject == null || object.metadata.annotations == oldObject.metadata.annotations",
    "request.operation == 'CREATE' || !(object.metadata.annotations != oldObject.metadata.annotations)",
])
def test_map_equality_and_inequality_compare_every_key(kube_emulator, tenant, expression):
    immutable = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
                 "metadata": {"name": "immutable-annotations"}, "spec": {
                     "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                                             "operations": ["CREATE", "UPDATE"],
                                                             "resources": ["pods"]}]},
                     "validations": [{"expression": expression, "message": "annotations are immutable"}]}}
    install(kube_emulator, immutable, binding("immutable-annotations"))
    tenant.create_namespaced_pod("default", pod("p", {"gpu-fraction": "0.5", "team": "a"}))
    with pytest.raises(ApiException) as e:
        tenant.patch_namespaced_pod("p", "default", {"metadata": {"annotations": {"gpu-fraction": "1"}}})
    assert e.value.status == 403 and "annotations are immutable" in json.loads(e.value.body)["message"]
    tenant.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"x": "y"}}})
