"""Least privilege in the install: Pod Security labels on the namespaces it makes, the reservation
pods and the controller within the `restricted` standard (checked by its rules), the agent the only
privileged part, and ConfigMap rights never cluster-wide."""

from __future__ import annotations

from typing import Any

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube import render_manifests
from runai_lite.backends.kube.manifests import reservation_pod

PSS = "pod-security.kubernetes.io/"


def restricted_violations(spec: dict[str, Any]) -> list[str]:
    """What breaks the Pod Security Standards' `restricted` profile (Kubernetes 1.30 rules) in a pod spec."""
    problems = [f"spec.{field}" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    problems += [f"volume {v['name']}: hostPath" for v in spec.get("volumes") or [] if "hostPath" in v]
    pod = spec.get("securityContext") or {}
    for container in spec.get("containers") or []:
        own, name = container.get("securityContext") or {}, container["name"]
        if own.get("privileged"):
            problems.append(f"{name}: privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation must be false")
        capabilities = own.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []) or set(capabilities.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: capabilities must drop ALL")
        if not (own.get("runAsNonRoot", pod.get("runAsNonRoot"))) or own.get("runAsUser", pod.get("runAsUser")) == 0:
            problems.append(f"{name}: must run as non-root")
        seccomp = (own.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile must be RuntimeDefault")
    return problems


def by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def test_the_rules_catch_what_restricted_refuses():
    assert restricted_violations({"hostPID": True, "containers": [{"name": "c", "securityContext": {
        "privileged": True, "runAsUser": 0}}]}) == [
        "spec.hostPID", "c: privileged", "c: allowPrivilegeEscalation must be false", "c: capabilities must drop ALL",
        "c: must run as non-root", "c: seccompProfile must be RuntimeDefault"]


def test_the_reservation_pods_and_the_controller_meet_restricted_and_the_agent_alone_is_privileged():
    manifests = render_manifests()
    assert restricted_violations(reservation_pod("n", 0, "img")["spec"]) == []
    controller = by_kind(manifests, "Deployment")["runai-lite-controller"]["spec"]["template"]["spec"]
    assert restricted_violations(controller) == []
    assert controller["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    agent = by_kind(manifests, "DaemonSet")["runai-lite-agent"]["spec"]["template"]["spec"]
    # it creates MIG instances and must see every container's processes on the GPUs (NVML lists the caller's PID namespace)
    assert agent["hostPID"] is True and agent["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert "spec.hostPID" in restricted_violations(agent)


def test_the_namespaces_carry_pod_security_labels():
    namespaces = by_kind(render_manifests(create_namespace=True), "Namespace")
    reservation = namespaces[k.RESERVATION_NAMESPACE]["metadata"]["labels"]
    assert {key: value for key, value in reservation.items() if key.startswith(PSS)} == {
        f"{PSS}enforce": "restricted", f"{PSS}warn": "restricted", f"{PSS}audit": "restricted"}
    system = namespaces[k.SYSTEM_NAMESPACE]["metadata"]["labels"]
    assert system[f"{PSS}enforce"] == "privileged"  # the agent; the controller alone would meet restricted


def test_configmap_rights_are_never_granted_cluster_wide():
    manifests = render_manifests()
    cluster_roles = by_kind(manifests, "ClusterRole")
    with_configmaps = {name for name, role in cluster_roles.items()
                       if any("configmaps" in rule["resources"] for rule in role["rules"])}
    assert with_configmaps == {"runai-lite-device-configmaps"}
    bound_cluster_wide = {b["roleRef"]["name"] for b in manifests if b["kind"] == "ClusterRoleBinding"}
    assert not with_configmaps & bound_cluster_wide
    role = cluster_roles["runai-lite-device-configmaps"]
    assert role["metadata"]["annotations"][k.CONTROLLER_ACCOUNT] == f"{k.SYSTEM_NAMESPACE}/runai-lite-controller"


def test_project_create_binds_the_configmap_role_in_the_project_namespace_only(kube_emulator, tmp_path):
    from .world import World

    world = World(kube_emulator, tmp_path)
    world.backend.create_project("team-a", 1)
    world.backend.create_project("team-a", 2)  # again: idempotent
    [binding] = world.kube.objects("rolebindings", "runai-team-a")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "runai-lite-device-configmaps"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "runai-lite-controller",
                                    "namespace": k.SYSTEM_NAMESPACE}]
    assert [b for b in world.kube.objects("rolebindings") if b["roleRef"]["name"] == "runai-lite-device-configmaps"
            and b["metadata"]["namespace"] != "runai-team-a"] == []
