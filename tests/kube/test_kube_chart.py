"""The Helm chart `deploy/runai-lite/`: generated from the install renderer and committed up to date,
rendered by Helm itself into exactly the renderer's manifests for several releases and values,
clean under `helm lint --strict`, and following Helm's conventions (the release's namespace and
names, the standard labels, nothing that `helm install --create-namespace` would fight over).

Helm is Helm 4's own Go SDK through `helm-python-sdk` (the test extra, where a wheel exists), or
a `helm` binary on PATH; without either the rendering tests are skipped with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.chart import chart_files
from runai_lite.backends.kube.install import InstallValues, Release, fullname, render_manifests

from .test_kube_manifests import CUSTOM

CHART = Path(__file__).resolve().parents[2] / "deploy" / "runai-lite"
STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/managed-by", "helm.sh/chart")

try:
    import helm_python
except ImportError:  # no wheel for this platform
    helm_python = None
HELM_BINARY = shutil.which("helm")
needs_helm = pytest.mark.skipif(helm_python is None and HELM_BINARY is None,
                                reason="neither helm-python-sdk (pip install -e '.[test]') nor a helm binary")


def helm_template(values: dict, release: Release) -> tuple[list[dict], dict[str, str]]:
    """`helm template RELEASE deploy/runai-lite -n NAMESPACE` with `values`: the objects, and the
    rendered files by name (NOTES.txt included)."""
    if helm_python is not None:
        with helm_python.Chart.load(str(CHART)) as chart:
            files = chart.render(values, name=release.name, namespace=release.namespace)
    else:
        done = subprocess.run([HELM_BINARY, "template", release.name, str(CHART), "-n", release.namespace,
                               "-f", "-"], input=yaml.safe_dump(values), capture_output=True, text=True,
                              timeout=120, check=True)
        files = {"all.yaml": done.stdout}
    objects = [doc for name, text in sorted(files.items()) if name.endswith(".yaml")
               for doc in yaml.safe_load_all(text) if doc]
    return objects, files


def _key(manifest: dict) -> tuple[str, str, str]:
    return manifest["kind"], manifest["metadata"].get("namespace", ""), manifest["metadata"]["name"]


def test_the_committed_chart_is_the_one_the_renderer_generates():
    files = chart_files()
    for name, text in files.items():
        assert (CHART / name).read_text() == text, (
            f"deploy/runai-lite/{name} is stale: python -m runai_lite.backends.kube.chart deploy/runai-lite")
    assert {str(p.relative_to(CHART)) for p in CHART.rglob("*") if p.is_file()} == set(files)


def test_values_yaml_holds_the_renderer_s_defaults():
    assert yaml.safe_load((CHART / "values.yaml").read_text()) == InstallValues().model_dump()


@needs_helm
@pytest.mark.parametrize(("values", "release"), [
    ({}, Release(name="runai-lite", namespace="runai-lite")),
    (CUSTOM, Release(name="gpu", namespace="gpu-system")),
    ({"fullnameOverride": "sched", "agent": {"privileged": False, "nodeSelector": {}},
      "deviceDelivery": "cdi"}, Release(name="other", namespace="runai-lite")),
], ids=["defaults", "custom", "fullname-override"])
def test_helm_renders_the_chart_into_the_renderer_s_manifests(values, release):
    rendered, _ = helm_template(values, release)
    expected = render_manifests(values, Release(release.name, release.namespace, service="Helm"))
    assert sorted(rendered, key=_key) == sorted(expected, key=_key)


@needs_helm
def test_helm_lint_finds_nothing_wrong():
    if helm_python is not None:
        for values in ({}, CUSTOM):
            report = helm_python.lint(str(CHART), values=values, strict=True, kube_version="1.32.0")
            # INFO (severity 1) is the only kind allowed: "icon is recommended" for a chart without a logo
            assert report["errors"] == [] and all(m["severity"] <= 1 for m in report["messages"]), report
    else:
        subprocess.run([HELM_BINARY, "lint", "--strict", str(CHART)], check=True, capture_output=True, timeout=120)


@needs_helm
def test_the_notes_say_where_it_went_and_what_to_do_next():
    _, files = helm_template(CUSTOM, Release(name="gpu", namespace="gpu-system"))
    notes = next(text for name, text in files.items() if name.endswith("NOTES.txt")) if helm_python else None
    if notes is None:
        pytest.skip("the helm binary's `template` does not print NOTES.txt")
    assert "namespace gpu-system (release gpu)" in notes
    assert "rollout status deployment/gpu-runai-lite-controller" in notes
    assert "ServiceMonitor gpu-runai-lite" in notes and "port 9100" in notes
    # `helm template` sees no cluster, so it cannot know the namespace is labelled: it says how to
    assert "kubectl label namespace gpu-system pod-security.kubernetes.io/enforce=privileged" in notes


@pytest.mark.parametrize(("values", "release"), [({}, Release()), (CUSTOM, Release(name="gpu", namespace="gpu-system"))])
def test_the_chart_follows_helm_s_conventions(values, release):
    manifests = render_manifests(values, release)
    name = fullname(InstallValues.merged(values), release)
    # `helm install -n NS --create-namespace` makes the release's namespace: the chart never does
    assert not [m for m in manifests if m["kind"] == "Namespace" and m["metadata"]["name"] == release.namespace]
    for manifest in manifests:
        meta = manifest["metadata"]
        if manifest["kind"] == "CustomResourceDefinition":
            continue
        assert all(label in meta["labels"] for label in STANDARD_LABELS), meta
        assert meta["labels"]["app.kubernetes.io/instance"] == release.name
        if "namespace" in meta:
            # and the agent's Role where it restarts the GPU Operator's pods of its node
            assert meta["namespace"] in (release.namespace, k.RESERVATION_NAMESPACE,
                                         InstallValues.merged(values).agent.gpuOperatorNamespace), meta
        if manifest["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
                                "Deployment", "DaemonSet", "Service", "ServiceMonitor"):
            assert meta["name"].startswith(name), meta["name"]
    workloads = {m["kind"]: m for m in manifests if m["kind"] in ("Deployment", "DaemonSet")}
    for workload in workloads.values():
        container = workload["spec"]["template"]["spec"]["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        port = container["ports"][0]["containerPort"]
        assert f"--metrics-port={port}" in container["command"]
    assert workloads["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"][3] == (
        f"{InstallValues.merged(values).image.repository}:{InstallValues.merged(values).image.tag or '0.1.0'}")


def test_switches_add_and_remove_what_they_name():
    kinds = lambda values: [m["kind"] for m in render_manifests(values)]  # noqa: E731
    assert "ServiceMonitor" not in kinds({}) and "Service" not in kinds({})
    assert kinds({"metrics": {"serviceMonitor": {"enabled": True}}}).count("Service") == 2
    assert "Namespace" in kinds({}) and "Namespace" not in kinds({"reservationNamespace": {"create": False}})
    agent = [m for m in render_manifests(CUSTOM) if m["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]
    assert agent["runtimeClassName"] == "nvidia" and agent["imagePullSecrets"] == [{"name": "regcred"}]
    assert "runtimeClassName" not in [m for m in render_manifests() if m["kind"] == "DaemonSet"][0]["spec"]["template"]["spec"]
