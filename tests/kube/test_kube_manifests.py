"""Install manifests and job objects: valid against the Kubernetes OpenAPI schemas (the chart: test_kube_chart.py)
equal to the Python renderer, and RBAC that grants no more than the components need."""

from __future__ import annotations

import kubernetes_validate
import pytest
import yaml

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube import install_manifests_yaml, render_manifests
from runai_lite.backends.kube.install import Release
from runai_lite.backends.kube.manifests import device_configmap, event, job_manifest, reservation_pod
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobType

K8S_VERSION = "1.32.0"
# Kinds of CustomResourceDefinitions the schemas do not hold (the Prometheus Operator's).
NOT_IN_THE_SCHEMAS = {"ServiceMonitor"}
CUSTOM = {"agent": {"driver": "simulated", "simulate": "A100-SXM4-40GB:1", "tolerations": [],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "nvidia.com/gpu.present", "operator": "In", "values": ["true"]}]}]}}}},
          "controller": {"replicas": 2, "nodeSelector": {"kubernetes.io/os": "linux"},
                         "tolerations": [{"key": "infra", "operator": "Exists", "effect": "NoSchedule"}],
                         "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
          "image": {"repository": "registry.local/runai-lite", "tag": "dev", "pullPolicy": "Always"},
          "imagePullSecrets": [{"name": "regcred"}], "runtimeClassName": "nvidia",
          "metrics": {"port": 9100, "serviceMonitor": {"enabled": True, "interval": "15s",
                                                         "labels": {"release": "prometheus"}}},
          "reservationNamespace": {"create": False}}


def validate(obj: dict) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("values", "release"), [({}, Release()), (CUSTOM, Release(name="gpu", namespace="gpu-system"))])
def test_every_install_manifest_is_valid_kubernetes(values, release):
    manifests = render_manifests(values, release, create_namespace=True)
    for manifest in manifests:
        if manifest["kind"] not in NOT_IN_THE_SCHEMAS:
            validate(manifest)
    kinds = [m["kind"] for m in manifests]
    assert {"Deployment", "DaemonSet", "PriorityClass", "ServiceAccount", "ClusterRole", "Role",
            "Namespace"} <= set(kinds)
    assert list(yaml.safe_load_all(install_manifests_yaml(values, release))) == manifests


@pytest.mark.parametrize(("release", "prefix"), [(Release(), "runai-lite-"), (Release(name="gpu"), "gpu-runai-lite-")])
def test_priority_classes_are_runai_s_named_after_the_release(release, prefix):
    classes = [m for m in render_manifests(release=release) if m["kind"] == "PriorityClass"]
    assert {m["metadata"]["name"]: m["value"] for m in classes} == {
        f"{prefix}train": 50, f"{prefix}interactive-preemptible": 75, f"{prefix}build": 100}
    # the CLI finds them by their label; the controller is told the install's name
    assert k.PriorityClassNames.from_classes(classes) == k.PriorityClassNames(prefix)
    [controller] = [m for m in render_manifests(release=release) if m["kind"] == "Deployment"]
    assert f"--install-name={prefix[:-1]}" in controller["spec"]["template"]["spec"]["containers"][0]["command"]


def test_job_and_controller_objects_are_valid_kubernetes():
    for flags, kind in (({"gpu": "0.5"}, JobType.TRAIN), ({"gpu_memory": "10GB"}, JobType.INTERACTIVE),
                        ({"mig_profile": "2g.10gb"}, JobType.INTERACTIVE_PREEMPTIBLE), ({"gpu": "2"}, JobType.TRAIN)):
        spec = JobSpec(name="j1", project="team-a", image="busybox", type=kind, request=request_from_flags(**flags),
                       command=("python", "train.py"), env=(("A", "1"),), user="alice")
        validate(job_manifest(spec))
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "j1", "uid": "1234"}
    validate(device_configmap(k.pod_configmap("j1-abcde", "j1"), "runai-team-a", {"NVIDIA_VISIBLE_DEVICES": "GPU-1"},
                              owner))
    validate(reservation_pod("node-1", 0, "runai-lite:test"))
    job = {**job_manifest(JobSpec(name="j1", project="team-a", image="busybox")), "kind": "Job"}
    job["metadata"]["uid"] = "1234"
    validate(event(job, "Bound", "bound to node-1 GPU 0", "2026-01-01T00:00:00Z"))


def test_a_job_ignores_disruptions_and_names_our_scheduler_queue_and_class():
    spec = JobSpec(name="mig1", project="team-a", image="img", type=JobType.INTERACTIVE,
                   request=request_from_flags(gpu_memory="10GB"))
    job = job_manifest(spec)
    template = job["spec"]["template"]
    assert job["metadata"]["namespace"] == "runai-team-a"
    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [126, 127]}}]
    assert template["spec"]["schedulerName"] == "runai-lite-scheduler"
    assert template["spec"]["priorityClassName"] == "runai-lite-build"
    assert template["metadata"]["labels"][k.QUEUE_LABEL] == "team-a"
    assert template["metadata"]["annotations"][k.GPU_MEMORY] == "9537"  # 10GB in MiB, rounded up
    assert template["metadata"]["annotations"][k.GPU_MEMORY_BYTES] == str(10**10)
    assert template["spec"]["containers"][0]["envFrom"] == [{"configMapRef": {"name": "mig1-runai-gpu"}}]


# -- RBAC ----------------------------------------------------------------------------------------


def rules_of(name: str, kind: str, namespace: str | None = None) -> set[tuple[str, str, str]]:
    [role] = [m for m in render_manifests() if m["kind"] == kind and m["metadata"]["name"] == name
              and m["metadata"].get("namespace") == namespace]
    return {(group, resource, verb) for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


def test_rbac_grants_only_what_each_component_needs():
    manifests = render_manifests()
    everything = [r for m in manifests if m["kind"] in ("ClusterRole", "Role") for r in m["rules"]]
    assert not any("secrets" in r["resources"] or "*" in r["resources"] or "*" in r["verbs"]
                   or "*" in r["apiGroups"] for r in everything)
    controller = rules_of("runai-lite-controller", "ClusterRole")
    # cluster-wide the controller never creates or deletes pods, nodes, namespaces or Jobs
    assert not {(g, r, v) for g, r, v in controller if r in ("pods", "nodes", "namespaces", "jobs")
                and v in ("create", "delete", "update", "deletecollection")}
    assert ("", "pods/binding", "create") in controller and ("", "pods/eviction", "create") in controller
    assert rules_of("runai-lite-controller", "Role", k.RESERVATION_NAMESPACE) == {
        ("", "pods", "create"), ("", "pods", "delete")}
    assert rules_of("runai-lite-controller", "Role", "runai-lite") == {
        ("coordination.k8s.io", "leases", v) for v in ("get", "create", "update")}
    assert rules_of("runai-lite-agent", "ClusterRole") == {("", "nodes", v) for v in ("get", "list", "watch", "patch")}
    assert rules_of("runai-lite-reservation", "Role", k.RESERVATION_NAMESPACE) == {("", "pods", "patch")}
    bindings = {(m["kind"], m["metadata"]["name"]): m for m in manifests if m["kind"] in ("RoleBinding", "ClusterRoleBinding")}
    # every authenticated user may read the install's PriorityClasses (their names and values), nothing more
    readers = bindings.pop(("ClusterRoleBinding", "runai-lite-priorityclass-reader"))
    assert readers["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group",
                                    "name": "system:authenticated"}]
    assert rules_of("runai-lite-priorityclass-reader", "ClusterRole") == {
        ("scheduling.k8s.io", "priorityclasses", v) for v in ("get", "list")}
    for (kind, name), binding in bindings.items():
        assert binding["subjects"][0]["name"] == name and binding["roleRef"]["name"] == name
    accounts = {m["metadata"]["name"] for m in manifests if m["kind"] == "ServiceAccount"}
    assert accounts == {"runai-lite-controller", "runai-lite-agent", "runai-lite-reservation"}
    assert reservation_pod("n", 0, "img")["spec"]["serviceAccountName"] == "runai-lite-reservation"


def test_a_fraction_pod_gets_its_enforcement_variables_but_not_the_controller_s_python_path():
    from runai_lite.backends.kube.enforcement import pod_enforcement
    from runai_lite.devices import grant, pod_environment
    from runai_lite.model import Allocation

    share = Allocation(kind="fraction", node="n1", gpu_indices=(0,), gpu_uuids=("GPU-1",), share_milli=250,
                       memory_mib=4096)
    node = {"metadata": {"name": "n1", "labels": {"runai-lite/enforcement": "hami-core"},
                         "annotations": {"runai-lite/hami-core-path": "/opt/vgpu/libvgpu.so"}}}
    env = pod_environment(grant(share, ["GPU-1"], enforcement=pod_enforcement(share, node)))
    assert env["CUDA_DEVICE_MEMORY_LIMIT"] == "4096m"
    assert "/opt/vgpu/libvgpu.so" in env["LD_PRELOAD"]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-1"
    assert "PYTHONPATH" not in env  # the hook's files are not in the job's image
