"""The manifests that install runai-lite on a cluster, rendered in Python (`runai-adm install --print`).

The Helm chart under `deploy/runai-lite/` is generated from this renderer (`chart.py`:
`python -m runai_lite.backends.kube.chart deploy/runai-lite`): the chart's templates are these
manifests rendered with a placeholder for every value, each replaced by its Helm expression. Tests
check that the committed chart is the generated one and that Helm itself renders it, for several
sets of values, into exactly what `render_manifests` gives. So the two install paths cannot drift.

Names follow the Helm release (`Release`): objects are named after the release's full name
(`<release>` when it contains `runai-lite`, else `<release>-runai-lite`, as `helm create` does),
namespaced objects go into the release's namespace (created by `helm install --create-namespace`
or `runai-adm install --print`, never by the chart), and every object carries the standard labels.

RBAC is the least the components need (nothing touches Secrets):
- controller, cluster-wide: read, create, patch and delete Allocation objects (`allocations.py`),
  which no other role may write (readers: an aggregated ClusterRole adds `get/list/watch` to `view`);
  read nodes, namespaces, pods and Jobs, and patch them (annotations);
  bind and evict pods; write ConfigMaps (device environment) and Events; list claims, volumes and
  storage classes and set a WaitForFirstConsumer claim's selected node;
- controller, in `runai-reservation`: create and delete the reservation pods;
- controller, in its own namespace: the Lease;
- agent: read and patch nodes (its GPU inventory and MIG layout annotations); in the GPU
  Operator's namespace, list and delete pods (its node's device plugin and feature discovery,
  restarted after a MIG change);
- reservation pods, in `runai-reservation`: patch pods (their own UUID annotation).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from ...model import JobType
from . import allocations
from . import conventions as k
from .admission import admission_policies

VERSION = "0.1.0"
CHART_NAME = "runai-lite"


class _Values(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ImageValues(_Values):
    repository: str = Field(default="ghcr.io/runai-lite/runai-lite", min_length=1)
    tag: str = Field(default="", description="default: the chart's appVersion")
    pullPolicy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"


class ControllerValues(_Values):
    replicas: int = Field(default=1, ge=1, description="more than one: standbys behind the Lease")
    resources: dict[str, Any] = Field(default_factory=lambda: {
        "requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}})
    nodeSelector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    affinity: dict[str, Any] = Field(default_factory=dict)
    priorityClassName: str = "system-cluster-critical"


class AgentValues(_Values):
    driver: Literal["nvml", "simulated"] = "nvml"
    simulate: str = Field(default="", description="simulated inventory for driver=simulated, e.g. A100-SXM4-40GB:1")
    privileged: bool = True  # creating MIG instances needs the GPU's management capabilities
    resources: dict[str, Any] = Field(default_factory=lambda: {
        "requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}})
    nodeSelector: dict[str, str] = Field(default_factory=lambda: {k.DYNAMIC_MIG_LABEL: "true"})
    tolerations: list[dict[str, Any]] = Field(default_factory=lambda: [{"operator": "Exists"}])
    affinity: dict[str, Any] = Field(default_factory=dict)
    priorityClassName: str = "system-node-critical"
    gpuOperatorNamespace: str = Field(default="gpu-operator", description="where the agent restarts its node's "
                                      "device plugin and feature discovery pods after a MIG change (must exist)")


class ServiceMonitorValues(_Values):
    enabled: bool = Field(default=False, description="a Service per component and a Prometheus Operator ServiceMonitor")
    interval: str = "30s"
    labels: dict[str, str] = Field(default_factory=dict, description="what your Prometheus selects ServiceMonitors by")


class MetricsValues(_Values):
    port: int = Field(default=8080, ge=1, le=65535, description="/metrics, /healthz and /readyz of each component")
    serviceMonitor: ServiceMonitorValues = ServiceMonitorValues()


class ReservationNamespaceValues(_Values):
    create: bool = Field(default=True, description=f"create {k.RESERVATION_NAMESPACE} (false: it exists already)")


class InstallValues(_Values):
    """What an install can change. The Helm chart's values.yaml is its defaults."""

    nameOverride: str = ""
    fullnameOverride: str = ""
    image: ImageValues = ImageValues()
    imagePullSecrets: list[dict[str, str]] = Field(default_factory=list, description="e.g. [{name: regcred}]")
    runtimeClassName: str = Field(default="", description="the agent's and reservation pods' RuntimeClass (e.g. nvidia), when the "
                                  "NVIDIA runtime is not the nodes' default")
    deviceDelivery: Literal["env", "cdi", "device-plugin"] = Field(
        default="env", description="how jobs get their GPU or MIG device (docs/kubernetes.md)")
    controller: ControllerValues = ControllerValues()
    agent: AgentValues = AgentValues()
    metrics: MetricsValues = MetricsValues()
    reservationNamespace: ReservationNamespaceValues = ReservationNamespaceValues()


    @classmethod
    def merged(cls, overrides: dict[str, Any]) -> InstallValues:
        """The defaults with `overrides` merged in as Helm merges `--set` and `-f` values: maps key by
        key (so `controller.resources.requests` keeps the default limits), everything else replaced."""
        return cls(**_merge(cls().model_dump(), overrides))


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = (_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict)
                       else value)
    return merged


@dataclass(frozen=True)
class Release:
    """What Helm knows of an install besides its values."""

    name: str = CHART_NAME
    namespace: str = k.SYSTEM_NAMESPACE
    service: str = "runai-adm"  # `app.kubernetes.io/managed-by`; Helm writes "Helm"


def fullname(values: InstallValues, release: Release) -> str:
    """The base of every object's name, as `helm create`'s `fullname` helper makes it."""
    if values.fullnameOverride:
        return values.fullnameOverride[:63].rstrip("-")
    name = values.nameOverride or CHART_NAME
    return (release.name if name in release.name else f"{release.name}-{name}")[:63].rstrip("-")


def image(values: InstallValues) -> str:
    return f"{values.image.repository}:{values.image.tag or VERSION}"


# The component names with the default release, as the tests' service accounts know them.
CONTROLLER = "runai-lite-controller"
AGENT = "runai-lite-agent"
RESERVATION = "runai-lite-reservation"
ALLOCATION_READER = "runai-lite-allocation-reader"
COMPONENT = "app.kubernetes.io/component"


def selector_labels(values: InstallValues, release: Release) -> dict[str, str]:
    return {"app.kubernetes.io/name": values.nameOverride or CHART_NAME, "app.kubernetes.io/instance": release.name}


def standard_labels(values: InstallValues, release: Release) -> dict[str, str]:
    return {"helm.sh/chart": f"{CHART_NAME}-{VERSION}", **selector_labels(values, release),
            "app.kubernetes.io/version": VERSION, "app.kubernetes.io/managed-by": release.service}


class Placeholder(str):
    """A value's stand-in while the chart's templates are generated (`chart.py`): `@@FORM:PATH@@`,
    which the generator turns into a Helm expression. The renderer marks how it uses a value:
    inside text (`text`), or only when set (`optional`)."""

    def form(self, form: str) -> Placeholder:
        return Placeholder(re.sub(r"^@@\w+:", f"@@{form}:", self))


def _text(value: Any) -> str:
    """`value` written into a string (an annotation, an argument)."""
    return value.form("text") if isinstance(value, Placeholder) else str(value)


def _optional(**fields: Any) -> dict[str, Any]:
    """The fields that are set: an empty selector, list or name is left out, as the chart's
    `{{- with }}` leaves it out."""
    return {key: value.form("with") if isinstance(value, Placeholder) else value
            for key, value in fields.items() if value}


@dataclass(frozen=True)
class _Install:
    """One rendering: the values, the release, and the names and labels that follow from them."""

    values: InstallValues
    release: Release

    @property
    def name(self) -> str:
        return fullname(self.values, self.release)

    def labels(self) -> dict[str, str]:
        return standard_labels(self.values, self.release)

    def selector(self) -> dict[str, str]:
        return selector_labels(self.values, self.release)

    def extra_labels(self, labels: Any) -> dict[str, str]:
        return dict(labels)

    def meta(self, name: str, namespace: str | None = None, component: str | None = None,
             labels: Any = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": {
            **self.labels(), **({COMPONENT: component} if component else {}),
            **(self.extra_labels(labels) if labels else {})}}
        if namespace is not None:
            meta["namespace"] = namespace
        return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _binding(i: _Install, kind: str, name: str, role_kind: str, account: str, account_namespace: str,
             namespace: str | None = None) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": i.meta(name, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}]}


def _account(i: _Install, name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": i.meta(name, namespace),
            "automountServiceAccountToken": True}


RUNTIME_DEFAULT = {"type": "RuntimeDefault"}
# Pod Security Standards: the reservation pods meet `restricted`; the release's namespace holds the
# agent (privileged, hostPID: it creates MIG instances and reads every process on the GPUs).
RESTRICTED_NAMESPACE = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
AGENT_NAMESPACE = {"pod-security.kubernetes.io/enforce": "privileged",
                   "pod-security.kubernetes.io/warn": "baseline", "pod-security.kubernetes.io/audit": "baseline"}
HARDENED = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
            "runAsUser": 65532, "capabilities": {"drop": ["ALL"]}}
PORT_NAME = "metrics"


def _downward(*names: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in names]


def _probed(i: _Install, container: dict[str, Any]) -> dict[str, Any]:
    """The container's metrics port and the probes on it (`runai-lite ... --metrics-port`)."""
    return {**container,
            "ports": [{"name": PORT_NAME, "containerPort": i.values.metrics.port, "protocol": "TCP"}],
            "livenessProbe": {"httpGet": {"path": "/healthz", "port": PORT_NAME}, "initialDelaySeconds": 10,
                              "periodSeconds": 20, "failureThreshold": 3},
            "readinessProbe": {"httpGet": {"path": "/readyz", "port": PORT_NAME}, "periodSeconds": 10}}


def _workload(i: _Install, kind: str, name: str, component: str, placement: ControllerValues | AgentValues,
              container: dict[str, Any], **pod_spec: Any) -> dict[str, Any]:
    """A Deployment or DaemonSet running one container as the ServiceAccount of the same name."""
    selector = {**i.selector(), COMPONENT: component}
    return {
        "apiVersion": "apps/v1", "kind": kind, "metadata": i.meta(name, i.release.namespace, component),
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**i.labels(), COMPONENT: component},
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": _text(i.values.metrics.port)}},
                "spec": {"serviceAccountName": name, "priorityClassName": placement.priorityClassName,
                         **_optional(imagePullSecrets=i.values.imagePullSecrets), **pod_spec,
                         **_optional(nodeSelector=placement.nodeSelector, tolerations=placement.tolerations,
                                     affinity=placement.affinity),
                         "containers": [_probed(i, container)]},
            },
        },
    }


def _metrics_objects(i: _Install, components: dict[str, str]) -> list[dict[str, Any]]:
    """A headless Service per component (its pods' metrics port) and the ServiceMonitor over them."""
    services = [{"apiVersion": "v1", "kind": "Service",
                 "metadata": i.meta(f"{name}-metrics", i.release.namespace, component),
                 "spec": {"clusterIP": "None",
                          "selector": {**i.selector(), COMPONENT: component},
                          "ports": [{"name": PORT_NAME, "port": i.values.metrics.port, "targetPort": PORT_NAME,
                                     "protocol": "TCP"}]}}
                for component, name in components.items()]
    monitor = i.values.metrics.serviceMonitor
    service_monitor = {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": i.meta(i.name, i.release.namespace, labels=monitor.labels),
        "spec": {"selector": {"matchLabels": i.selector()},
                 "namespaceSelector": {"matchNames": [i.release.namespace]},
                 "endpoints": [{"port": PORT_NAME, "path": "/metrics", "interval": monitor.interval}]}}
    return [*services, service_monitor]


# Objects rendered only when a value says so: the object's kind and name suffix -> the value's path.
CONDITIONS = {"Namespace": "reservationNamespace.create", "Service": "metrics.serviceMonitor.enabled",
              "ServiceMonitor": "metrics.serviceMonitor.enabled"}


def objects(i: _Install) -> list[tuple[str | None, dict[str, Any]]]:
    """Every object of an install with the value path that must be true for it to be rendered
    (None: always), in the order `kubectl apply` should create them."""
    v, release = i.values, i.release
    ns, n = release.namespace, i.name
    controller_name, agent_name, reservation_name = f"{n}-controller", f"{n}-agent", f"{n}-reservation"
    reader_name = f"{n}-allocation-reader"
    classes_reader = f"{n}-priorityclass-reader"
    classes = k.PriorityClassNames(prefix=f"{n}-")
    namespaces = [{"apiVersion": "v1", "kind": "Namespace",
                   "metadata": i.meta(k.RESERVATION_NAMESPACE, labels=RESTRICTED_NAMESPACE)}]
    priority_classes = [
        {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
         "metadata": i.meta(classes.of(t), labels={k.PRIORITY_CLASS_LABEL: t.priority_class}),
         "value": t.priority, "globalDefault": False, "preemptionPolicy": "Never",
         "description": f"runai-lite {t.display} jobs (priority {t.priority})"}
        for t in JobType]
    accounts = [_account(i, controller_name, ns), _account(i, agent_name, ns),
                _account(i, reservation_name, k.RESERVATION_NAMESPACE)]
    rbac_api = "rbac.authorization.k8s.io/v1"
    roles = [
        {"apiVersion": rbac_api, "kind": "ClusterRole", "metadata": i.meta(controller_name), "rules": [
            _rule([""], ["pods"], ["get", "list", "watch", "patch"]),
            _rule([""], ["pods/binding", "pods/eviction"], ["create"]),
            _rule([""], ["nodes"], ["get", "list", "watch", "patch"]),
            _rule([""], ["namespaces"], ["get", "list", "watch"]),
            _rule([""], ["events"], ["create", "patch"]),
            _rule(["events.k8s.io"], ["events"], ["create", "patch"]),
            _rule(["batch"], ["jobs"], ["get", "list", "watch", "patch"]),
            _rule([allocations.GROUP], [allocations.PLURAL], ["get", "list", "watch", "create", "patch", "delete"]),
            # volume binding: read claims, volumes and classes; give a WaitForFirstConsumer claim its node
            _rule([""], ["persistentvolumeclaims"], ["list", "patch"]),
            _rule([""], ["persistentvolumes"], ["list"]),
            _rule(["storage.k8s.io"], ["storageclasses"], ["list"]),
        ]},
        _binding(i, "ClusterRoleBinding", controller_name, "ClusterRole", controller_name, ns),
        # The device ConfigMaps, in project namespaces only: `runai-adm project create` binds this
        # role there to the account the annotation names (never cluster-wide, never kube-system).
        {"apiVersion": rbac_api, "kind": "ClusterRole",
         "metadata": {**i.meta(f"{n}-device-configmaps", component=k.DEVICE_CONFIGMAPS_COMPONENT),
                      "annotations": {k.CONTROLLER_ACCOUNT: f"{_text(ns)}/{_text(controller_name)}"}},
         "rules": [_rule([""], ["configmaps"], ["get", "create", "patch"])]},
        # Users may read Allocations where they may read pods (aggregated into `view`, hence `edit`
        # and `admin`); no role but the controller's may write them.
        {"apiVersion": rbac_api, "kind": "ClusterRole",
         "metadata": i.meta(reader_name, labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
         "rules": [_rule([allocations.GROUP], [allocations.PLURAL], ["get", "list", "watch"])]},
        # Everyone who may submit learns the install's class names from the classes themselves
        # (`runai submit` names the job type's class); names and values of classes are no secret.
        {"apiVersion": rbac_api, "kind": "ClusterRole", "metadata": i.meta(classes_reader),
         "rules": [_rule(["scheduling.k8s.io"], ["priorityclasses"], ["get", "list"])]},
        {"apiVersion": rbac_api, "kind": "ClusterRoleBinding", "metadata": i.meta(classes_reader),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": classes_reader},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]},
        {"apiVersion": rbac_api, "kind": "Role", "metadata": i.meta(controller_name, k.RESERVATION_NAMESPACE), "rules": [
            _rule([""], ["pods"], ["create", "delete"]),
        ]},
        _binding(i, "RoleBinding", controller_name, "Role", controller_name, ns, k.RESERVATION_NAMESPACE),
        {"apiVersion": rbac_api, "kind": "Role", "metadata": i.meta(controller_name, ns), "rules": [
            _rule(["coordination.k8s.io"], ["leases"], ["get", "create", "update"]),
        ]},
        _binding(i, "RoleBinding", controller_name, "Role", controller_name, ns, ns),
        {"apiVersion": rbac_api, "kind": "ClusterRole", "metadata": i.meta(agent_name), "rules": [
            _rule([""], ["nodes"], ["get", "list", "watch", "patch"]),
        ]},
        _binding(i, "ClusterRoleBinding", agent_name, "ClusterRole", agent_name, ns),
        # after a MIG change: restart the device plugin and feature discovery pods of its node
        {"apiVersion": rbac_api, "kind": "Role", "metadata": i.meta(agent_name, v.agent.gpuOperatorNamespace),
         "rules": [_rule([""], ["pods"], ["list", "delete"])]},
        _binding(i, "RoleBinding", agent_name, "Role", agent_name, ns, v.agent.gpuOperatorNamespace),
        {"apiVersion": rbac_api, "kind": "Role", "metadata": i.meta(reservation_name, k.RESERVATION_NAMESPACE),
         "rules": [
            _rule([""], ["pods"], ["patch"]),  # its own UUID annotation
        ]},
        _binding(i, "RoleBinding", reservation_name, "Role", reservation_name, k.RESERVATION_NAMESPACE,
                 k.RESERVATION_NAMESPACE),
    ]
    the_image = image(v)
    controller = _workload(i, "Deployment", controller_name, "controller", v.controller, {
        "name": "controller", "image": the_image, "imagePullPolicy": v.image.pullPolicy,
        "command": ["runai-lite", "controller", "--image", the_image, "--namespace", ns,
                    f"--metrics-port={_text(v.metrics.port)}", f"--install-name={n}"],
        "env": [*_downward(("POD_NAME", "metadata.name")),
                {"name": "RUNAI_LITE_DEVICE_DELIVERY", "value": v.deviceDelivery},
                {"name": "RUNAI_LITE_RUNTIME_CLASS", "value": v.runtimeClassName}],
        "resources": v.controller.resources,
        "securityContext": HARDENED,
    }, securityContext={"runAsNonRoot": True, "seccompProfile": RUNTIME_DEFAULT})
    controller["spec"] = {"replicas": v.controller.replicas, **controller["spec"]}
    agent = _workload(i, "DaemonSet", agent_name, "agent", v.agent, {
        "name": "agent", "image": the_image, "imagePullPolicy": v.image.pullPolicy,
        "command": ["runai-lite", "agent", "--driver", v.agent.driver, "--simulate", v.agent.simulate,
                    f"--metrics-port={_text(v.metrics.port)}",
                    f"--operator-namespace={_text(v.agent.gpuOperatorNamespace)}"],
        "env": [*_downward(("NODE_NAME", "spec.nodeName")),
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {"name": "NVIDIA_MIG_CONFIG_DEVICES", "value": "all"}],
        "resources": v.agent.resources,
        "securityContext": {"privileged": v.agent.privileged, "runAsUser": 0},  # NVML MIG calls need root
    # the host's PIDs: NVML lists only the processes of the caller's PID namespace, and the in-use
    # check must see every container's before a partition is destroyed
    }, hostPID=True, securityContext={"seccompProfile": RUNTIME_DEFAULT}, **_optional(runtimeClassName=v.runtimeClassName))
    # admissionregistration.k8s.io/v1: Kubernetes 1.30 or later
    policies = admission_policies(ns, i.labels(), controller_account=controller_name, classes=classes,
                                  agent_account=agent_name)
    metrics = _metrics_objects(i, {"controller": controller_name, "agent": agent_name})
    listed = [allocations.crd(), *namespaces, *priority_classes, *accounts, *roles, *policies, controller, agent,
              *metrics]
    return [(CONDITIONS.get(m["kind"]), m) for m in listed]


def _holds(values: InstallValues, path: str | None) -> bool:
    value: Any = values
    for part in (path.split(".") if path else ()):
        value = getattr(value, part)
    return bool(value)


def render_manifests(values: InstallValues | dict[str, Any] | None = None, release: Release | None = None,
                     create_namespace: bool = False) -> list[dict[str, Any]]:
    """Every object of an install, in the order `kubectl apply` should create them; with
    `create_namespace`, the release's namespace first (as `helm install --create-namespace`)."""
    v = values if isinstance(values, InstallValues) else InstallValues.merged(values or {})
    r = release or Release()
    chosen = [m for path, m in objects(_Install(v, r)) if _holds(v, path)]
    if create_namespace:
        chosen.insert(0, {"apiVersion": "v1", "kind": "Namespace",
                          "metadata": _Install(v, r).meta(r.namespace, labels=AGENT_NAMESPACE)})
    return chosen


class _Dumper(yaml.SafeDumper):
    """Plain YAML: a dict used twice (a selector and its template's labels) is written out twice,
    not as an anchor and alias."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


_Dumper.add_representer(Placeholder, lambda dumper, value: dumper.represent_str(str(value)))


def _dump(manifest: dict[str, Any]) -> str:
    return yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def to_yaml(manifests: list[dict[str, Any]]) -> str:
    return "".join("---\n" + _dump(m) for m in manifests)


def render_yaml(values: InstallValues | dict[str, Any] | None = None, release: Release | None = None,
                create_namespace: bool = False) -> str:
    return to_yaml(render_manifests(values, release, create_namespace))
