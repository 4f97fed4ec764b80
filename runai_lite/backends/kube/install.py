"""The manifests that install runai-lite on a cluster, rendered in Python (`runai-adm install --print`).

The Helm chart under `deploy/runai-lite/` is generated from this renderer
(`python -m runai_lite.backends.kube.install --write-chart deploy/runai-lite`), and a test checks
that the chart's templates, filled with its default values, give exactly these manifests. So the
two install paths cannot drift, and tests need no `helm`.

RBAC is the least the components need (nothing touches Secrets):
- controller, cluster-wide: read, create, patch and delete Allocation objects (`allocations.py`),
  which no other role may write (readers: an aggregated ClusterRole adds `get/list/watch` to `view`);
  read nodes, namespaces, pods and Jobs, and patch them (annotations);
  bind and evict pods; write ConfigMaps (device environment) and Events; list claims, volumes and
  storage classes and set a WaitForFirstConsumer claim's selected node;
- controller, in `runai-reservation`: create and delete the reservation pods;
- controller, in its own namespace: the Lease;
- agent: read and patch nodes (its GPU inventory and MIG layout annotations);
- reservation pods, in `runai-reservation`: patch pods (their own UUID annotation).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ...model import JobType
from . import allocations
from .admission import admission_policies
from . import conventions as k

VERSION = "0.1.0"
CHART_NAME = "runai-lite"


class InstallValues(BaseModel):
    """What an install can change. The Helm chart's values.yaml has the same keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    namespace: str = k.SYSTEM_NAMESPACE
    image: str = f"ghcr.io/runai-lite/runai-lite:{VERSION}"
    imagePullPolicy: str = "IfNotPresent"
    controllerReplicas: int = Field(default=1, ge=1, description="more than one: standbys behind the Lease")
    agentDriver: str = Field(default="nvml", pattern="^(nvml|simulated)$")
    agentSimulate: str = Field(default="", description="simulated inventory for agentDriver=simulated, e.g. A100-SXM4-40GB:1")
    agentPrivileged: bool = True  # creating MIG instances needs the GPU's management capabilities


COMPONENT = "app.kubernetes.io/component"
LABELS = {"app.kubernetes.io/name": "runai-lite", "app.kubernetes.io/part-of": "runai-lite"}
CONTROLLER = "runai-lite-controller"
AGENT = "runai-lite-agent"
RESERVATION = "runai-lite-reservation"
ALLOCATION_READER = "runai-lite-allocation-reader"


def _meta(name: str, namespace: str | None = None, component: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**LABELS, **({COMPONENT: component} if component else {})}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _binding(kind: str, name: str, role_kind: str, account: str, account_namespace: str,
             namespace: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": _meta(name, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}]}


def _account(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace),
            "automountServiceAccountToken": True}


HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": 65532, "capabilities": {"drop": ["ALL"]}}


def _downward(*names: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in names]


def _workload(kind: str, name: str, namespace: str, component: str, priority_class: str,
              container: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    """A Deployment or DaemonSet running one container as the ServiceAccount of the same name."""
    labels = {**LABELS, COMPONENT: component}
    return {
        "apiVersion": "apps/v1", "kind": kind, "metadata": _meta(name, namespace, component),
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"serviceAccountName": name, "priorityClassName": priority_class, **pod_spec,
                         "containers": [container]},
            },
        },
    }


def render_manifests(values: InstallValues | dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object of an install, in the order `kubectl apply` should create them."""
    v = values if isinstance(values, InstallValues) else InstallValues(**(values or {}))
    ns = v.namespace
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}
                  for name in (ns, k.RESERVATION_NAMESPACE)]
    priority_classes = [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": _meta(t.priority_class),
         "value": t.priority, "globalDefault": False, "preemptionPolicy": "Never",
         "description": f"runai-lite {t.display} jobs (priority {t.priority})"}
        for t in JobType]
    accounts = [_account(CONTROLLER, ns), _account(AGENT, ns), _account(RESERVATION, k.RESERVATION_NAMESPACE)]
    rbac_api = "rbac.authorization.k8s.io/v1"
    roles = [
        {"apiVersion": rbac_api, "kind": "ClusterRole", "metadata": _meta(CONTROLLER), "rules": [
            _rule([""], ["pods"], ["get", "list", "watch", "patch"]),
            _rule([""], ["pods/binding", "pods/eviction"], ["create"]),
            _rule([""], ["nodes"], ["get", "list", "watch", "patch"]),
            _rule([""], ["namespaces"], ["get", "list", "watch"]),
            _rule([""], ["configmaps"], ["get", "create", "patch"]),
            _rule([""], ["events"], ["create", "patch"]),
            _rule(["events.k8s.io"], ["events"], ["create", "patch"]),
            _rule(["batch"], ["jobs"], ["get", "list", "watch", "patch"]),
            _rule([allocations.GROUP], [allocations.PLURAL], ["get", "list", "watch", "create", "patch", "delete"]),
            # volume binding: read claims, volumes and classes; give a WaitForFirstConsumer claim its node
            _rule([""], ["persistentvolumeclaims"], ["list", "patch"]),
            _rule([""], ["persistentvolumes"], ["list"]),
            _rule(["storage.k8s.io"], ["storageclasses"], ["list"]),
        ]},
        _binding("ClusterRoleBinding", CONTROLLER, "ClusterRole", CONTROLLER, ns),
        # Users may read Allocations where they may read pods (aggregated into `view`, hence `edit`
        # and `admin`); no role but the controller's may write them.
        {"apiVersion": rbac_api, "kind": "ClusterRole",
         "metadata": {**_meta(ALLOCATION_READER), "labels": {**_meta(ALLOCATION_READER)["labels"],
                                                             "rbac.authorization.k8s.io/aggregate-to-view": "true"}},
         "rules": [_rule([allocations.GROUP], [allocations.PLURAL], ["get", "list", "watch"])]},
        {"apiVersion": rbac_api, "kind": "Role", "metadata": _meta(CONTROLLER, k.RESERVATION_NAMESPACE), "rules": [
            _rule([""], ["pods"], ["create", "delete"]),
        ]},
        _binding("RoleBinding", CONTROLLER, "Role", CONTROLLER, ns, k.RESERVATION_NAMESPACE),
        {"apiVersion": rbac_api, "kind": "Role", "metadata": _meta(CONTROLLER, ns), "rules": [
            _rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update"]),
        ]},
        _binding("RoleBinding", CONTROLLER, "Role", CONTROLLER, ns, ns),
        {"apiVersion": rbac_api, "kind": "ClusterRole", "metadata": _meta(AGENT), "rules": [
            _rule([""], ["nodes"], ["get", "list", "watch", "patch"]),
        ]},
        _binding("ClusterRoleBinding", AGENT, "ClusterRole", AGENT, ns),
        {"apiVersion": rbac_api, "kind": "Role", "metadata": _meta(RESERVATION, k.RESERVATION_NAMESPACE), "rules": [
            _rule([""], ["pods"], ["patch"]),  # its own UUID annotation
        ]},
        _binding("RoleBinding", RESERVATION, "Role", RESERVATION, k.RESERVATION_NAMESPACE, k.RESERVATION_NAMESPACE),
    ]
    controller = _workload("Deployment", CONTROLLER, ns, "controller", "system-cluster-critical", {
        "name": "controller", "image": v.image, "imagePullPolicy": v.imagePullPolicy,
        "command": ["runai-lite", "controller", "--image", v.image, "--namespace", ns],
        "env": _downward(("POD_NAME", "metadata.name")),
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "securityContext": HARDENED,
    })
    controller["spec"] = {"replicas": v.controllerReplicas, **controller["spec"]}
    agent = _workload("DaemonSet", AGENT, ns, "agent", "system-node-critical", {
        "name": "agent", "image": v.image, "imagePullPolicy": v.imagePullPolicy,
        "command": ["runai-lite", "agent", "--driver", v.agentDriver, "--simulate", v.agentSimulate],
        "env": [*_downward(("NODE_NAME", "spec.nodeName")),
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_MIG_CONFIG_DEVICES", "value": "all"}],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": {"privileged": v.agentPrivileged, "runAsUser": 0},  # NVML MIG calls need root
    }, nodeSelector={k.DYNAMIC_MIG_LABEL: "true"}, tolerations=[{"operator": "Exists"}])
    policies = admission_policies(ns, dict(LABELS))  # admissionregistration.k8s.io/v1: Kubernetes 1.30 or later
    return [allocations.crd(), *namespaces, *priority_classes, *accounts, *roles, *policies, controller, agent]


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a dict used twice (a selector and its template's labels) is written out twice,
    not as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(manifest: dict[str, Any]) -> str:
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return "".join("---\n" + _dump(m) for m in manifests)


def render_yaml(values: InstallValues | dict[str, Any] | None = None) -> str:
    return to_yaml(render_manifests(values))


# --------------------------------------------------------------------------------------------
# The Helm chart, generated from the renderer


_TOKEN = "@@{}@@"
_TOKEN_RE = re.compile(r"'?@@(\w+)@@'?")


def chart_templates() -> dict[str, str]:
    """Template files of the chart: the manifests with each value replaced by its Helm expression."""
    fields = InstallValues.model_fields
    placeholders = InstallValues.model_construct(**{name: _TOKEN.format(name) for name in fields})
    manifests = render_manifests(placeholders)

    def helm(match: re.Match[str]) -> str:
        name = match[1]
        if isinstance(fields[name].default, str) and match[0].startswith("'"):
            return f"{{{{ .Values.{name} | quote }}}}"
        return f"{{{{ .Values.{name} }}}}"

    files = {}
    for index, (manifest, plain) in enumerate(zip(manifests, render_manifests(), strict=True)):
        kind = manifest["kind"].lower()
        name = plain["metadata"]["name"]
        text = _dump(manifest)
        files[f"templates/{index:02d}-{kind}-{name}.yaml"] = _TOKEN_RE.sub(helm, text)
    return files


def chart_files() -> dict[str, str]:
    """Every file of `deploy/runai-lite/`."""
    chart = {"apiVersion": "v2", "name": CHART_NAME, "version": VERSION, "appVersion": VERSION, "type": "application",
             "description": "runai-lite on Kubernetes: GPU fractions, dynamic MIG, priorities and quotas"}
    header = ("# Generated by `python -m runai_lite.backends.kube.install --write-chart deploy/runai-lite`;\n"
              "# edit runai_lite/backends/kube/install.py instead.\n")
    values = yaml.safe_dump(InstallValues().model_dump(), sort_keys=False)
    return {"Chart.yaml": header + yaml.safe_dump(chart, sort_keys=False), "values.yaml": header + values,
            **{name: header + text for name, text in chart_templates().items()}}


def write_chart(directory: Path) -> list[Path]:
    templates = directory / "templates"
    templates.mkdir(parents=True, exist_ok=True)
    for old in templates.glob("*.yaml"):
        old.unlink()
    written = []
    for name, text in chart_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render runai-lite's install manifests or write its Helm chart.")
    parser.add_argument("--write-chart", type=Path, help="write the Helm chart into this directory")
    args = parser.parse_args(argv)
    if args.write_chart:
        for path in write_chart(args.write_chart):
            print(path)
    else:
        print(render_yaml(), end="")


if __name__ == "__main__":
    main()
