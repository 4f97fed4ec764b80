"""Which nodes a pod may run on, decided as kube-scheduler's filter plugins decide it.

Pure functions over API objects (plain dicts): node Ready and schedulable (NodeUnschedulable),
`nodeSelector` and required node affinity (NodeAffinity), taints with effect NoSchedule or
NoExecute against the pod's tolerations (TaintToleration), host ports (NodePorts), pod count, CPU,
memory and ephemeral-storage requests against allocatable minus every bound, unfinished pod of
every scheduler (NodeResourcesFit, with the init-container rule), and PersistentVolumeClaims
(VolumeBinding: a claim that is bound pins the pod to its volume's nodes; a
WaitForFirstConsumer claim not yet bound is bound by the controller to the chosen node; any other
unbound claim keeps the pod waiting). The controller feeds the result to the scheduler as the job's
eligible nodes, and a pod no node passes is pending with kube-scheduler's kind of message
("0/3 nodes are available: 2 node(s) didn't match nodeSelector, 1 Insufficient cpu.").

Every failing filter of a node is counted, not only the first, so the message says all that stands
in the way. What is not here: inter-pod affinity and anti-affinity, topology spread, volume limits
and zones, DRA (documented in docs/kubernetes.md).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import conventions as k

Obj = Mapping[str, Any]

EXTENDED_PREFIXES = ("nvidia.com/",)  # GPUs are the scheduler's own business, not a filter here
SELECTED_NODE = "volume.kubernetes.io/selected-node"  # what kube-scheduler writes on a WaitForFirstConsumer claim


@dataclass(frozen=True)
class Resources:
    """Requests in the units kube-scheduler compares: millicores and bytes."""

    cpu_milli: int = 0
    memory: int = 0
    ephemeral: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_milli + other.cpu_milli, self.memory + other.memory,
                         self.ephemeral + other.ephemeral, self.pods + other.pods)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_milli - other.cpu_milli, self.memory - other.memory,
                         self.ephemeral - other.ephemeral, self.pods - other.pods)


def _resources(values: Mapping[str, Any] | None, pods: int = 0) -> Resources:
    values = values or {}
    return Resources(cpu_milli=round(k.parse_quantity(values.get("cpu")) * 1000),
                     memory=int(k.parse_quantity(values.get("memory"))),
                     ephemeral=int(k.parse_quantity(values.get("ephemeral-storage"))), pods=pods)


def _maximum(a: Resources, b: Resources) -> Resources:
    return Resources(max(a.cpu_milli, b.cpu_milli), max(a.memory, b.memory), max(a.ephemeral, b.ephemeral),
                     max(a.pods, b.pods))


def pod_requests(pod: Obj) -> Resources:
    """What the pod asks of its node: the sum over its containers or the largest init container,
    whichever is more, per resource (sidecar init containers, `restartPolicy: Always`, add to both),
    plus its overhead; one pod."""
    spec = pod.get("spec") or {}
    containers = Resources()
    for container in spec.get("containers") or []:
        containers += _requests_of(container)
    sidecars = Resources()
    init = Resources()
    for container in spec.get("initContainers") or []:
        requests = _requests_of(container)
        if container.get("restartPolicy") == "Always":
            sidecars += requests
            init = _maximum(init, sidecars)
        else:
            init = _maximum(init, sidecars + requests)
    total = _maximum(containers + sidecars, init) + _resources(spec.get("overhead"))
    return Resources(total.cpu_milli, total.memory, total.ephemeral, pods=1)


def _requests_of(container: Obj) -> Resources:
    """A container's requests; a limit without a request is its request, as the API server defaults it."""
    resources = container.get("resources") or {}
    return _resources({**(resources.get("limits") or {}), **(resources.get("requests") or {})})


UNLIMITED_PODS = 1 << 30


def allocatable(node: Obj) -> Resources | None:
    """What the kubelet offers pods; None when the node reports nothing (its resources are not checked)."""
    status = node.get("status") or {}
    values = status.get("allocatable") or status.get("capacity")
    if not values:
        return None
    pods = int(k.parse_quantity(values["pods"])) if "pods" in values else UNLIMITED_PODS
    return _resources(values, pods=pods)


def is_terminal(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


@dataclass
class NodeUsage:
    """What the pods already on a node take: requests and host ports."""

    requested: Resources = field(default_factory=Resources)
    ports: set[tuple[str, str, int]] = field(default_factory=set)

    def add(self, pod: Obj) -> None:
        self.requested += pod_requests(pod)
        self.ports |= host_ports(pod)


def usage_by_node(pods: Iterable[Obj], placed: Mapping[str, str] | None = None) -> dict[str, NodeUsage]:
    """Per node, every pod bound there and not finished, whichever scheduler placed it (terminating
    pods included: they hold their room until they are gone). `placed` adds pods the controller
    has decided on but not bound yet: pod key `namespace/name` -> node."""
    usage: dict[str, NodeUsage] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        node = (pod.get("spec") or {}).get("nodeName") or (placed or {}).get(key)
        if node and not is_terminal(pod):
            usage.setdefault(node, NodeUsage()).add(pod)
    return usage


def host_ports(pod: Obj) -> set[tuple[str, str, int]]:
    """(protocol, host IP, port) of every container port the pod opens on its node."""
    spec = pod.get("spec") or {}
    found = set()
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                found.add((port.get("protocol") or "TCP", port.get("hostIP") or "0.0.0.0", int(port["hostPort"])))
    return found


def _ports_conflict(wanted: set[tuple[str, str, int]], used: set[tuple[str, str, int]]) -> bool:
    """Same protocol and port, on the same host IP or where either side listens on every IP."""
    return any(protocol == other_protocol and port == other_port and (ip == other_ip or "0.0.0.0" in (ip, other_ip))
               for protocol, ip, port in wanted for other_protocol, other_ip, other_port in used)


# --------------------------------------------------------------------------------------------
# Node affinity and taints


def _expression_matches(expression: Obj, labels: Mapping[str, str]) -> bool:
    key, operator = expression.get("key", ""), expression.get("operator", "")
    values = expression.get("values") or []
    present = key in labels
    if operator == "In":
        return present and labels[key] in values
    if operator == "NotIn":
        return not present or labels[key] not in values
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt"):
        try:
            have, bound = int(labels[key]), int(values[0])
        except (KeyError, IndexError, ValueError):
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _field_matches(expression: Obj, node: Obj) -> bool:
    """matchFields: only `metadata.name` exists, as in kube-scheduler."""
    if expression.get("key") != "metadata.name":
        return False
    return _expression_matches({**expression, "key": "name"}, {"name": node["metadata"]["name"]})


def _term_matches(term: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches nothing
    return (all(_expression_matches(e, labels) for e in expressions)
            and all(_field_matches(f, node) for f in fields))


def selector_matches(pod: Obj, node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    return all(labels.get(key) == value for key, value in ((pod.get("spec") or {}).get("nodeSelector") or {}).items())


def affinity_matches(pod: Obj, node: Obj) -> bool:
    """requiredDuringSchedulingIgnoredDuringExecution: any of its terms."""
    required = (((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    return any(_term_matches(term, node) for term in required.get("nodeSelectorTerms") or [])


def _tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("operator") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint.get("key")
    return toleration.get("key") == taint.get("key") and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated_taint(pod: Obj, node: Obj) -> Obj | None:
    """The first NoSchedule or NoExecute taint the pod does not tolerate."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not any(_tolerates(t, taint) for t in tolerations):
            return taint
    return None


def node_ready(node: Obj) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = [c for c in conditions if c.get("type") == "Ready"]
    return not ready or ready[0].get("status") == "True"


# --------------------------------------------------------------------------------------------
# Volumes


@dataclass(frozen=True)
class Volumes:
    """The claims and volumes of the cluster the volume filter reads."""

    claims: Mapping[tuple[str, str], Obj] = field(default_factory=dict)  # (namespace, name) -> PVC
    volumes: Mapping[str, Obj] = field(default_factory=dict)  # PV name -> PV
    classes: Mapping[str, Obj] = field(default_factory=dict)  # StorageClass name -> class

    def claims_of(self, pod: Obj) -> list[tuple[str, Obj | None]]:
        namespace = pod["metadata"].get("namespace", "")
        names = [v["persistentVolumeClaim"]["claimName"] for v in (pod.get("spec") or {}).get("volumes") or []
                 if (v.get("persistentVolumeClaim") or {}).get("claimName")]
        return [(name, self.claims.get((namespace, name))) for name in names]

    def waits_for_first_consumer(self, claim: Obj) -> bool:
        storage_class = self.classes.get((claim.get("spec") or {}).get("storageClassName") or "")
        return bool(storage_class) and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"


def volume_problem(pod: Obj, volumes: Volumes) -> str | None:
    """Why no node can take the pod because of its claims (the same for every node), or None."""
    for name, claim in volumes.claims_of(pod):
        if claim is None:
            return f'persistentvolumeclaim "{name}" not found'
        if claim["metadata"].get("deletionTimestamp"):
            return f'persistentvolumeclaim "{name}" is being deleted'
        bound = (claim.get("spec") or {}).get("volumeName")
        if not bound and not volumes.waits_for_first_consumer(claim):
            selected = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
            if not selected:
                return "pod has unbound immediate PersistentVolumeClaims"
    return None


def volume_node_conflict(pod: Obj, node: Obj, volumes: Volumes) -> bool:
    """A bound claim whose volume's node affinity excludes the node, or a claim already given to
    another node for its first consumer."""
    name_of_node = node["metadata"]["name"]
    for _, claim in volumes.claims_of(pod):
        if claim is None:
            continue
        selected = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)
        bound = (claim.get("spec") or {}).get("volumeName")
        if bound:
            volume = volumes.volumes.get(bound) or {}
            required = ((volume.get("spec") or {}).get("nodeAffinity") or {}).get("required")
            if required and not any(_term_matches(t, node) for t in required.get("nodeSelectorTerms") or []):
                return True
        elif selected and selected != name_of_node:
            return True
    return False


def claims_to_bind(pod: Obj, node: str, volumes: Volumes) -> list[Obj]:
    """The WaitForFirstConsumer claims of the pod that still need `selected-node` set to `node`
    before the pod is bound (the provisioner then makes the volume there)."""
    return [claim for _, claim in volumes.claims_of(pod)
            if claim is not None and not (claim.get("spec") or {}).get("volumeName")
            and volumes.waits_for_first_consumer(claim)
            and not (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE)]


# --------------------------------------------------------------------------------------------
# The filters together


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the filters read of a node, worked out once per pass (not once per pod)."""

    name: str
    node: Obj
    unschedulable: bool
    ready: bool
    free: Resources | None  # allocatable minus what bound pods request; None: the node reports none
    ports: frozenset[tuple[str, str, int]]


def node_facts(nodes: Iterable[Obj], usage: Mapping[str, NodeUsage]) -> list[NodeFacts]:
    facts = []
    for node in nodes:
        name = node["metadata"]["name"]
        used = usage.get(name) or NodeUsage()
        room = allocatable(node)
        facts.append(NodeFacts(name=name, node=node, unschedulable=bool((node.get("spec") or {}).get("unschedulable")),
                               ready=node_ready(node), free=None if room is None else room - used.requested,
                               ports=frozenset(used.ports)))
    return facts


def failed_filters(pod: Obj, node: Obj, usage: NodeUsage | None, volumes: Volumes = Volumes()) -> list[str]:
    """Every filter the node fails for the pod, in kube-scheduler's words; [] when it may run there."""
    [facts] = node_facts([node], {node["metadata"]["name"]: usage} if usage else {})
    return _failures(pod, pod_requests(pod), host_ports(pod), facts, volumes)


def _failures(pod: Obj, wanted: Resources, ports: set[tuple[str, str, int]], node: NodeFacts,
              volumes: Volumes) -> list[str]:
    reasons = []
    if node.unschedulable:
        reasons.append("node(s) were unschedulable")
    if not node.ready:
        reasons.append("node(s) were not ready")
    taint = untolerated_taint(pod, node.node)
    if taint is not None:
        reasons.append(f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}")
    if not selector_matches(pod, node.node):
        reasons.append("node(s) didn't match nodeSelector")
    if not affinity_matches(pod, node.node):
        reasons.append("node(s) didn't match Pod's node affinity")
    if ports and _ports_conflict(ports, node.ports):
        reasons.append("node(s) didn't have free ports for the requested pod ports")
    if node.free is not None:
        reasons += _insufficient(wanted, node.free)
    if volumes.claims and volume_node_conflict(pod, node.node, volumes):
        reasons.append("node(s) had volume node affinity conflict")
    return reasons


def _insufficient(wanted: Resources, free: Resources) -> list[str]:
    reasons = ["Too many pods"] if wanted.pods > free.pods else []
    for name, need, have in (("cpu", wanted.cpu_milli, free.cpu_milli), ("memory", wanted.memory, free.memory),
                             ("ephemeral-storage", wanted.ephemeral, free.ephemeral)):
        if need > 0 and need > have:
            reasons.append(f"Insufficient {name}")
    return reasons


@dataclass(frozen=True)
class Filtered:
    """The nodes a pod may run on, and why the others were left out."""

    eligible: tuple[str, ...]
    total: int
    excluded: tuple[tuple[str, int], ...] = ()  # (reason, how many nodes), most frequent first
    blocked: str | None = None  # a reason no node can help (an unbound immediate claim, say)

    @property
    def summary(self) -> str:
        """kube-scheduler's FitError wording when no node is left; what was left out otherwise."""
        if self.blocked:
            return f"0/{self.total} nodes are available: {self.blocked}."
        parts = ", ".join(f"{count} {reason}" for reason, count in self.excluded)
        if not parts:
            return ""
        if not self.eligible:
            return f"0/{self.total} nodes are available: {parts}."
        return f"node filters left out {self.total - len(self.eligible)} of {self.total} nodes: {parts}"


def filter_nodes(pod: Obj, nodes: list[NodeFacts], volumes: Volumes = Volumes()) -> Filtered:
    blocked = volume_problem(pod, volumes)
    if blocked:
        return Filtered(eligible=(), total=len(nodes), blocked=blocked)
    wanted, ports = pod_requests(pod), host_ports(pod)
    eligible = []
    counts: Counter[str] = Counter()
    for node in nodes:
        reasons = _failures(pod, wanted, ports, node, volumes)
        if reasons:
            counts.update(reasons)
        else:
            eligible.append(node.name)
    excluded = tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
    return Filtered(eligible=tuple(eligible), total=len(nodes), excluded=excluded)


def shape(pod: Obj) -> str:
    """Everything of a pod the filters read: pods of one shape (a Job's, say) pass the same nodes."""
    spec = pod.get("spec") or {}
    keys = ("nodeSelector", "affinity", "tolerations", "overhead", "volumes")
    containers = [[c.get("resources"), c.get("ports"), c.get("restartPolicy")]
                  for part in ("initContainers", "containers") for c in spec.get(part) or []]
    return json.dumps([pod["metadata"].get("namespace"), [spec.get(key) for key in keys], containers], sort_keys=True)


def pending_reason(scheduler_reason: str | None, filtered: Filtered | None) -> str | None:
    """The "why pending" a researcher reads: the node filters when they leave nothing, else the
    scheduler's reason with what the filters left out."""
    if filtered is None or not filtered.summary:
        return scheduler_reason
    if not filtered.eligible:
        return filtered.summary
    if scheduler_reason is None:
        return None
    return f"{scheduler_reason}; {filtered.summary}"
