"""The cluster as the scheduler sees it: API objects (plain dicts) in, a `Snapshot` plus indexes out.

Pure module: `build_view` takes the `ClusterObjects` a reader returned (`cache.py`), so the
translation from Kubernetes objects to the scheduler's model is tested without a cluster.

Everything the controller needs lives in the API objects, so a restarted controller rebuilds the
same view: a pod's allocation is its Allocation object (`allocations.py`: written by the controller
before the pod is bound, writable by no user; the pod's annotation of the same content is only a
mirror and is never read here), a node's MIG layout is the desired layout the controller wrote
(adopting the agent's actual layout when there is none yet), and a shared GPU's real UUID is what
its reservation pod reported. Each pending pod also gets the nodes kube-scheduler's filters allow
it (`predicates.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from ...gpu.catalog import GpuModel, default_catalog
from ...model import Allocation, Gpu, Job, JobStatus, MigInstance, Node, Project, Snapshot
from ...units import MiB
from . import allocations
from . import conventions as k
from .manifests import InvalidRequest, mig_limits, pod_job_type, pod_request, whole_gpus
from .meta import Meta
from .predicates import (Filtered, NodeFacts, NodeUsage, Resources, Volumes, allocatable, filter_nodes, host_ports,
                         node_ready, pod_requests, shape)


@dataclass(frozen=True)
class ClusterObjects:
    """What one read of the API returned."""

    nodes: list[dict[str, Any]]
    namespaces: list[dict[str, Any]]
    pods: list[dict[str, Any]]  # every pod: ours, reservation pods and other schedulers' GPU pods
    jobs: list[dict[str, Any]]  # batch Jobs runai-lite made
    volumes: Volumes = field(default_factory=Volumes)  # the claims our pending pods mount, their volumes and classes
    allocations: list[dict[str, Any]] = field(default_factory=list)  # Allocation objects (the controller's record)
    # Equal for two reads that saw the same objects; None when the reader cannot tell (it lists).
    version: Any = None


@dataclass
class ClusterView:
    snapshot: Snapshot
    pods: dict[str, dict[str, Any]]  # scheduler job id -> our pod (not finished, not stopping)
    batch_jobs: dict[str, dict[str, Any]]  # batch Job uid -> Job
    nodes: dict[str, dict[str, Any]]
    reservations: dict[tuple[str, int], dict[str, Any]]  # (node, gpu index) -> reservation pod
    desired: dict[str, dict[int, list[dict[str, Any]]]]  # node -> GPU index -> desired instances
    actual: dict[str, dict[int, list[dict[str, Any]]]]  # node -> GPU index -> instances the agent reports
    agent_errors: dict[str, list[str]] = field(default_factory=dict)
    invalid: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # pods we cannot schedule, why
    projects_by_namespace: dict[str, str] = field(default_factory=dict)
    filtered: dict[str, Filtered] = field(default_factory=dict)  # pending job id -> what the node filters left
    volumes: Volumes = field(default_factory=Volumes)
    stopping: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> our bound pod being deleted
    allocations: dict[str, Allocation] = field(default_factory=dict)  # job id -> what its Allocation object records
    allocation_objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # job id -> its Allocation object
    stale_allocations: list[dict[str, Any]] = field(default_factory=list)  # objects no live pod of ours stands behind
    priority_classes: k.PriorityClassNames = field(default_factory=k.PriorityClassNames)

    def reserved_uuid(self, node: str, gpu_index: int) -> str | None:
        pod = self.reservations.get((node, gpu_index))
        if pod is None or Meta(pod).deleting:
            return None
        return Meta(pod).annotation(k.RESERVED_UUID) or None

    def mig_uuid(self, node: str, gpu_index: int, profile: str, start: int) -> str | None:
        for item in self.actual.get(node, {}).get(gpu_index, []):
            if item.get("profile") == profile and item.get("start") == start and item.get("uuid"):
                return str(item["uuid"])
        return None

    def allocation_of(self, pod: dict[str, Any]) -> Allocation | None:
        """What the controller recorded for one of our pods (None: not claimed). Never read from the pod."""
        return self.allocations.get(k.job_id(Meta(pod).namespace or "", Meta(pod).name))

    def owner_job(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        for ref in Meta(pod).owner_references:
            if ref.get("kind") == "Job" and ref.get("uid") in self.batch_jobs:
                return self.batch_jobs[ref["uid"]]
        return None


def is_finished(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_ours(pod: dict[str, Any]) -> bool:
    return (pod.get("spec") or {}).get("schedulerName") == k.SCHEDULER_NAME


def build_view(objects: ClusterObjects, priority_classes: k.PriorityClassNames | None = None) -> ClusterView:
    """The scheduler's snapshot and the indexes the controller applies a plan with, from scratch;
    job types are read against the install's `priority_classes`."""
    return ViewBuilder(priority_classes).build(objects)


T = TypeVar("T")


class _Memo(Generic[T]):
    """What was derived from an object (or a few), kept while its version stays the same.

    A version is the object's resourceVersion (or a tuple of those and the other inputs): the API
    server changes it with every change, so an equal version means the same content. Entries not
    asked for in a build are dropped by `sweep`, so the memo holds one value per live object. An
    object without a resourceVersion (built by hand) is derived afresh each time."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Hashable, T]] = {}
        self._seen: dict[Hashable, tuple[Hashable, T]] = {}
        self.derived = 0  # how many values were derived (not reused): what a build cost

    def get(self, key: Hashable, version: Hashable, derive: Callable[[], T]) -> T:
        entry = self._seen.get(key) or self._entries.get(key)
        if entry is not None and version is not None and entry[0] == version:
            value = entry[1]
        else:
            value = derive()
            self.derived += 1
        if version is not None:
            self._seen[key] = (version, value)
        return value

    def sweep(self) -> None:
        self._entries, self._seen = self._seen, {}


def _version(obj: dict[str, Any] | None) -> str | None:
    return ((obj or {}).get("metadata") or {}).get("resourceVersion") or None


@dataclass(frozen=True, slots=True)
class PodFacts:
    """What the view reads of one pod, worked out once per resourceVersion."""

    key: tuple[str, str]  # (namespace, name)
    version: str | None  # its resourceVersion
    uid: str | None
    job_owners: tuple[str, ...]  # UIDs of the batch Jobs its owner references name
    reservation: tuple[str, int] | None  # (node, GPU index) of a reservation pod
    reservation_pod: bool
    ours: bool
    finished: bool
    deleting: bool
    node: str | None
    host: Resources  # what it asks of its node (kube-scheduler's sum)
    ports: frozenset[tuple[str, str, int]]
    whole_gpus: int  # nvidia.com/gpu limits (another scheduler's pod takes these)
    mig: tuple[tuple[str, int], ...]  # nvidia.com/mig-<profile> limits (the same)


def pod_facts(pod: dict[str, Any]) -> PodFacts:
    meta = Meta(pod)
    spec = pod.get("spec") or {}
    reservation_pod = meta.namespace == k.RESERVATION_NAMESPACE and meta.label("app") == k.RESERVATION_APP
    reservation = None
    if reservation_pod:
        try:
            reservation = (meta.annotations[k.RESERVATION_NODE], int(meta.annotations[k.RESERVATION_GPU]))
        except (KeyError, ValueError):
            pass
    owners = tuple(ref.get("uid") for ref in meta.owner_references if ref.get("kind") == "Job")
    return PodFacts(key=(meta.namespace or "", meta.name), version=_version(pod), uid=meta.uid,
                    job_owners=owners, reservation=reservation,
                    reservation_pod=reservation_pod, ours=is_ours(pod), finished=is_finished(pod),
                    deleting=meta.deleting, node=spec.get("nodeName") or None, host=pod_requests(pod),
                    ports=frozenset(host_ports(pod)), whole_gpus=whole_gpus(pod),
                    mig=tuple(sorted(mig_limits(pod).items())))


@dataclass(frozen=True, slots=True)
class NodeInventory:
    """What the view reads of one node object, worked out once per resourceVersion. The layouts
    are read-only here: the view gets copies (the binder changes its desired layouts)."""

    name: str
    dynamic_mig: bool
    mig_label: bool
    actual: dict[int, list[dict[str, Any]]]
    agent_errors: tuple[str, ...]
    desired: dict[int, list[dict[str, Any]]] | None  # None: the controller wrote none yet
    inventory: tuple[tuple[int, str, str, int, bool, bool], ...] | None  # the agent's, None: no agent
    plugin_gpus: int  # the device plugin's nvidia.com/gpu (used without an agent's inventory)
    product: str
    memory_label: int
    schedulable: bool
    ready: bool
    unschedulable: bool
    room: Resources | None
    gpus: tuple[tuple[int, str, str, int, bool, bool], ...] = ()  # `_gpus_of`, worked out once


def node_inventory(node: dict[str, Any]) -> NodeInventory:
    meta = Meta(node)
    name, labels, annotations = meta.name, meta.labels, meta.annotations
    actual, report = k.decode_layout(annotations.get(k.MIG_ACTUAL) if reported_by_its_agent(node) else None)
    desired = k.decode_layout(annotations[k.MIG_DESIRED])[0] if k.MIG_DESIRED in annotations else None
    mig_label = labels.get(k.MIG_ENABLED_LABEL) == "true"
    items = gpu_inventory(node)
    inventory = tuple(
        (int(g["index"]), str(g.get("uuid") or f"{name}-gpu-{g['index']}"), str(g.get("name", "")),
         int(g.get("memory_mib") or 1), bool(g.get("mig_enabled", mig_label)), bool(g.get("simulated")))
        for g in sorted(items, key=lambda g: int(g["index"]))) if items else None
    status = node.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    unschedulable = bool((node.get("spec") or {}).get("unschedulable"))
    inventory = NodeInventory(
        name=name, dynamic_mig=labels.get(k.DYNAMIC_MIG_LABEL) == "true", mig_label=mig_label, actual=actual,
        agent_errors=tuple(str(e) for e in report.get("errors") or []), desired=desired, inventory=inventory,
        plugin_gpus=int(k.parse_quantity((status.get("allocatable") or status.get("capacity") or {})
                                         .get(k.GPU_RESOURCE))),
        product=labels.get(k.GPU_PRODUCT_LABEL) or "unknown",
        memory_label=int(k.parse_quantity(labels.get(k.GPU_MEMORY_LABEL))),
        schedulable=not unschedulable and (ready or not conditions), ready=node_ready(node),
        unschedulable=unschedulable, room=allocatable(node))
    return replace(inventory, gpus=_gpus_of(inventory))


class ViewBuilder:
    """Builds the view pass after pass, deriving again only what changed since the last build.

    Each pod's facts, request and job, each node's parsed inventory and scheduler model and each
    Allocation object's parse are kept per object, keyed by resourceVersion (with the other inputs
    they depend on: a job by its pod's, its batch Job's and its Allocation object's versions and
    its project; a node model by its node's version and what the pods on it hold). What is left
    per build are the sums and indexes over all objects, which are dictionary work. The result is
    the same as a fresh builder's (a hypothesis property checks it): keep one per controller."""

    def __init__(self, priority_classes: k.PriorityClassNames | None = None) -> None:
        self.priority_classes = priority_classes or k.PriorityClassNames()
        self._pods: _Memo[PodFacts] = _Memo()
        self._jobs: _Memo[Job | str | None] = _Memo()
        self._nodes: _Memo[NodeInventory] = _Memo()
        self._node_models: _Memo[Node] = _Memo()
        self._allocations: _Memo[tuple[tuple[str, str, str] | None, Allocation | None]] = _Memo()

    def build(self, objects: ClusterObjects) -> ClusterView:
        try:
            return self._build(objects)
        finally:
            for memo in (self._pods, self._jobs, self._nodes, self._node_models, self._allocations):
                memo.sweep()

    def _build(self, objects: ClusterObjects) -> ClusterView:
        batch_jobs = {uid: job for job in objects.jobs if (uid := Meta(job).uid)}
        projects_by_namespace = {
            Meta(ns).name: Meta(ns).labels[k.QUEUE_LABEL] for ns in objects.namespaces
            if k.QUEUE_LABEL in Meta(ns).labels
        }
        view = ClusterView(snapshot=Snapshot(), pods={}, batch_jobs=batch_jobs,
                           nodes={Meta(n).name: n for n in objects.nodes}, reservations={}, desired={},
                           actual={}, projects_by_namespace=projects_by_namespace, volumes=objects.volumes,
                           priority_classes=self.priority_classes)
        pods = self._pods
        facts = [(pod, pods.get(*_key_version(pod), lambda pod=pod: pod_facts(pod))) for pod in objects.pods]
        recorded = self._recorded_allocations(view, objects, facts)
        foreign: dict[str, ForeignDevices] = {}
        jobs: list[Job] = []
        for pod, fact in facts:
            if fact.reservation_pod:
                if fact.reservation is not None:
                    view.reservations[fact.reservation] = pod
            elif fact.ours and not (fact.node and k.job_id(*fact.key) not in recorded):
                if fact.finished:
                    continue
                if fact.deleting:
                    # A stopping pod holds what it holds until it is gone: its containers run through
                    # the grace period and the device plugin gives its GPU to no one before. The
                    # scheduler sees it as a preempted job still stopping (the embedded mode's rule),
                    # so a preemptor waits for it. Claimed but never bound, it holds nothing.
                    job = self._job(pod, fact, view) if fact.node else None
                    if job is not None and job.allocation is not None:
                        jobs.append(job.model_copy(update={"status": JobStatus.PREEMPTED}))
                        view.stopping[job.id] = pod
                    continue
                job = self._job(pod, fact, view)
                if job is not None:
                    jobs.append(job)
                    view.pods[job.id] = pod
            elif fact.node and not fact.finished:
                # Our scheduler name on a node without an allocation of ours (its nodeName was
                # written by hand) counts like another scheduler's pod.
                foreign.setdefault(fact.node, ForeignDevices()).add(fact)

        jobs, usage = self._filter_pending(view, jobs, objects, facts)
        held_by_node: dict[str, list[Job]] = {}
        for job in jobs:
            if job.allocation is not None:
                held_by_node.setdefault(job.allocation.node, []).append(job)
        reserved_by_node: dict[str, set[int]] = {}
        for where, index in view.reservations:
            reserved_by_node.setdefault(where, set()).add(index)
        nodes = []
        for node in objects.nodes:
            name = Meta(node).name
            nodes.append(self._node(node, view, foreign.get(name) or ForeignDevices(), held_by_node.get(name, []),
                                    usage.get(name), frozenset(reserved_by_node.get(name, ()))))
        names = set(projects_by_namespace.values()) | {j.project for j in jobs}
        deserved = {projects_by_namespace[Meta(ns).name]: k.parse_deserved(Meta(ns).annotation(k.DESERVED_GPUS))
                    for ns in objects.namespaces if Meta(ns).name in projects_by_namespace}
        projects = tuple(Project(name=name, deserved_gpus=deserved.get(name, 0.0)) for name in sorted(names))
        view.snapshot = Snapshot(nodes=tuple(nodes), jobs=tuple(jobs), projects=projects)
        return view

    def _recorded_allocations(self, view: ClusterView, objects: ClusterObjects,
                              facts: list[tuple[dict[str, Any], PodFacts]]) -> set[str]:
        """Index the Allocation objects that speak for a live, unfinished pod of this incarnation
        (matching UID) into the view; the others are stale (the controller deletes them). Returns
        the job ids that hold something."""
        live = {fact.key: fact for _, fact in facts}
        for obj in objects.allocations:
            held, allocation = self._allocations.get(
                *_key_version(obj), lambda obj=obj: (allocations.held_by(obj), allocations.parse(obj)))
            pod = live.get(held[:2]) if held else None
            if pod is None or held is None or pod.uid != held[2] or pod.finished or allocation is None:
                view.stale_allocations.append(obj)
                continue
            job = k.job_id(*held[:2])
            view.allocations[job] = allocation
            view.allocation_objects[job] = obj
        return set(view.allocations)

    def _job(self, pod: dict[str, Any], fact: PodFacts, view: ClusterView) -> Job | None:
        job_id = k.job_id(*fact.key)
        owner = next((view.batch_jobs[uid] for uid in fact.job_owners if uid in view.batch_jobs), None)
        project = view.projects_by_namespace.get(fact.key[0])
        versions = (fact.version, _version(owner) if owner else "", project,
                    _version(view.allocation_objects.get(job_id)) if job_id in view.allocations else "")
        outcome = self._jobs.get(fact.key, None if None in versions else versions,
                                 lambda: _job_of(pod, view, owner, project, fact))
        if isinstance(outcome, str):
            view.invalid.append((pod, outcome))
            return None
        return outcome

    def _filter_pending(self, view: ClusterView, jobs: list[Job], objects: ClusterObjects,
                        facts: list[tuple[dict[str, Any], PodFacts]]) -> tuple[list[Job], dict[str, NodeUsage]]:
        """Give each pending job the nodes kube-scheduler's filters allow it, against what every pod
        bound or claimed (ours: allocated, maybe not bound yet) already takes; and that use per node."""
        placed: dict[tuple[str, str], str] = {}
        for job in jobs:
            if job.allocation is not None:
                meta = Meta(view.pods.get(job.id) or view.stopping[job.id])
                placed[(meta.namespace or "", meta.name)] = job.allocation.node
        sums: dict[str, list[int]] = {}  # node -> [CPU, memory, ephemeral storage, pods]
        ports: dict[str, set[tuple[str, str, int]]] = {}
        for _, fact in facts:
            node = fact.node or placed.get(fact.key)
            if node and not fact.finished:
                total = sums.get(node)
                if total is None:
                    total = sums[node] = [0, 0, 0, 0]
                host = fact.host
                total[0] += host.cpu_milli
                total[1] += host.memory
                total[2] += host.ephemeral
                total[3] += host.pods
                if fact.ports:
                    ports.setdefault(node, set()).update(fact.ports)
        usage = {node: NodeUsage(Resources(*total), ports.get(node, set())) for node, total in sums.items()}
        pending = [job for job in jobs if job.allocation is None]
        if not pending:
            return jobs, usage
        nodes = [self._filter_facts(n, usage) for n in objects.nodes]
        by_shape: dict[str, Filtered] = {}
        eligible: dict[str, Job] = {}
        for job in pending:
            pod = view.pods[job.id]
            key = shape(pod)
            if key not in by_shape:
                by_shape[key] = filter_nodes(pod, nodes, objects.volumes)
            filtered = by_shape[key]
            view.filtered[job.id] = filtered
            eligible[job.id] = job.model_copy(update={"eligible_nodes": filtered.eligible})
        return [eligible.get(job.id, job) for job in jobs], usage

    def _filter_facts(self, node: dict[str, Any], usage: dict[str, NodeUsage]) -> NodeFacts:
        inventory = self._inventory(node)
        used = usage.get(inventory.name) or NodeUsage()
        return NodeFacts(name=inventory.name, node=node, unschedulable=inventory.unschedulable,
                         ready=inventory.ready,
                         free=None if inventory.room is None else inventory.room - used.requested,
                         ports=frozenset(used.ports))

    def _inventory(self, node: dict[str, Any]) -> NodeInventory:
        return self._nodes.get(_key(node), _version(node), lambda: node_inventory(node))

    def _node(self, node: dict[str, Any], view: ClusterView, foreign: ForeignDevices, held: list[Job],
              used: NodeUsage | None, reservations: frozenset[int]) -> Node:
        inventory = self._inventory(node)
        name = inventory.name
        view.actual[name] = inventory.actual
        if inventory.agent_errors:
            view.agent_errors[name] = list(inventory.agent_errors)
        if inventory.desired is not None:
            desired = {i: [dict(x) for x in items] for i, items in inventory.desired.items()}
        else:  # adopt what exists: partitions made before runai-lite (or its desired layout) was there
            desired = {i: [{"profile": x["profile"], "start": x["start"]} for x in items]
                       for i, items in inventory.actual.items()}
        view.desired[name] = desired
        users = frozenset(((a.gpu_indices[0], a.mig_start, a.mig_profile), j.id) for j in held
                          if (a := j.allocation) is not None and a.kind == "mig" and a.gpu_indices)
        reserved = tuple(view.reserved_uuid(name, index) for index, *_ in inventory.gpus)
        held_gpus = frozenset(i for j in held if (a := j.allocation) is not None for i in a.gpu_indices)
        ours = (sum(j.cpu_milli for j in held), sum(j.memory_mib for j in held))
        requested = used.requested if used else Resources()
        version = _version(node)
        inputs = None if version is None else (version, foreign.key(), users, reserved, reservations, held_gpus,
                                                   ours, requested)
        return self._node_models.get(name, inputs, lambda: _node_of(
            inventory, view, foreign, dict(users), held_gpus | reservations, ours, requested))


def _key_version(obj: dict[str, Any]) -> tuple[tuple[str, str], str | None]:
    """`_key` and `_version` at once (read for every object of every pass)."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or ""), meta.get("resourceVersion") or None


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", meta.get("name") or ""


def _job_of(pod: dict[str, Any], view: ClusterView, owner: dict[str, Any] | None, project: str | None,
            fact: PodFacts) -> Job | str:
    """The scheduler's job for one of our pods, or why it cannot be scheduled."""
    namespace, name = fact.key
    try:
        request = pod_request(pod)
    except InvalidRequest as error:
        return str(error)
    # The namespace alone names the project: a pod's own `runai/queue` label is the user's to write.
    if not project:
        return (f"namespace {namespace} is not a project (no {k.QUEUE_LABEL} label); "
                "submit into runai-<project>")
    try:
        job_type = pod_job_type(pod, owner, view.priority_classes)
    except InvalidRequest as error:
        return str(error)
    job_id = k.job_id(namespace, name)
    allocation = view.allocations.get(job_id)
    submitted = k.parse_time(Meta(owner or pod).creation_timestamp) or 0.0
    return Job(
        id=job_id,
        name=Meta(pod).label(k.JOB_NAME_LABEL) or (Meta(owner).name if owner else name),
        project=project,
        type=job_type,
        request=request,
        status=JobStatus.RUNNING if allocation else JobStatus.PENDING,
        submitted_at=submitted,
        started_at=k.parse_time(allocations.bound_at(view.allocation_objects[job_id])) if allocation else None,
        allocation=allocation,
        cpu_milli=fact.host.cpu_milli,
        memory_mib=-(-fact.host.memory // MiB),
    )


def reported_by_its_agent(node: dict[str, Any]) -> bool:
    """Whether the node's reports were written by the agent on that node: they name it, and the
    admission policy `runai-lite-node-reports` lets only that node's agent name it. Anything else
    (a report another node's agent forged before the policy existed, one copied from another node)
    is ignored."""
    return Meta(node).annotation(k.REPORTED_BY) == Meta(node).name


def gpu_inventory(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent's report of the node's GPUs, or [] when no agent of this node published one."""
    text = Meta(node).annotation(k.GPU_INVENTORY)
    if not text or not reported_by_its_agent(node):
        return []
    try:
        items = json.loads(text)
        return [item for item in items if isinstance(item, dict) and "index" in item]
    except (ValueError, TypeError):
        return []


@dataclass
class ForeignDevices:
    """What other schedulers' pods on a node took from the device plugin: whole GPUs, and MIG
    devices by profile (with the pods that hold them)."""

    gpus: int = 0
    mig: dict[str, list[str]] = field(default_factory=dict)  # profile -> "namespace/pod", one per device

    def add(self, pod: PodFacts) -> None:
        self.gpus += pod.whole_gpus
        for profile, count in pod.mig:
            self.mig.setdefault(profile, []).extend([k.job_id(*pod.key)] * count)

    def key(self) -> Hashable:
        return self.gpus, tuple((profile, tuple(pods)) for profile, pods in sorted(self.mig.items()))


def _mark_foreign_mig(gpus: list[Gpu], foreign: dict[str, list[str]]) -> list[Gpu]:
    """The device plugin handed each foreign MIG request one device of its profile, which one only the
    node knows: as many idle instances of that profile (lowest GPU, then slice, first) are taken as
    used by those pods, so the scheduler neither gives nor destroys them (the agent's in-use check
    protects the one really in use)."""
    if not foreign:
        return gpus
    holders = {profile: list(pods) for profile, pods in foreign.items()}
    out = []
    for gpu in gpus:
        instances = []
        for inst in gpu.mig_instances:
            if inst.job is None and holders.get(inst.profile):
                inst = inst.model_copy(update={"job": holders[inst.profile].pop(0)})
            instances.append(inst)
        out.append(gpu.model_copy(update={"mig_instances": tuple(instances)}))
    return out


def _without_foreign_gpus(gpus: list[Gpu], count: int, held: frozenset[int]) -> list[Gpu]:
    """Leave out `count` GPUs the device plugin gave other schedulers' pods: it hands out only GPUs not
    in MIG mode, and none a pod of ours holds; which ones it chose only the node knows, so the
    highest indices of the others go."""
    if not count:
        return gpus
    candidates = sorted((g.index for g in gpus if not g.mig_enabled and g.index not in held), reverse=True)
    drop = set(candidates[:count])
    return [g for g in gpus if g.index not in drop]


def _node_of(inventory: NodeInventory, view: ClusterView, foreign: ForeignDevices,
             users: dict[tuple[int, int | None, str | None], str], held: frozenset[int], ours: tuple[int, int],
             requested: Resources) -> Node:
    name = inventory.name
    gpus = []
    for index, uuid, model_name, memory, mig_enabled, simulated in inventory.gpus:
        model = default_catalog().find(model_name)
        instances = tuple(
            MigInstance(profile=item["profile"], start=item["start"], size=_slices(model, item["profile"]),
                        uuid=view.mig_uuid(name, index, item["profile"], item["start"]),
                        job=users.get((index, item["start"], item["profile"])))
            for item in view.desired[name].get(index, []))
        gpus.append(Gpu(index=index, uuid=view.reserved_uuid(name, index) or uuid,
                        model=model.name if model else model_name, memory_mib=memory,
                        dynamic_mig=inventory.dynamic_mig and bool(model and model.mig_capable),
                        mig_enabled=mig_enabled, simulated=simulated, mig_instances=instances))
    gpus = _mark_foreign_mig(_without_foreign_gpus(gpus, foreign.gpus, held), foreign.mig)
    if inventory.room is None:  # a node that reports no allocatable resources: not tracked
        return Node(name=name, gpus=tuple(gpus), schedulable=inventory.schedulable)
    # The scheduler counts its own jobs' CPU and memory; what other pods take is gone from the start.
    free = inventory.room - (requested - Resources(cpu_milli=ours[0], memory=ours[1] * MiB))
    return Node(name=name, gpus=tuple(gpus), schedulable=inventory.schedulable, cpu_milli=max(0, free.cpu_milli),
                memory_mib=max(0, free.memory // MiB))


def _slices(model: GpuModel | None, profile: str) -> int:
    found = model.find_profile(profile) if model is not None else None
    return found.memory_slices if found is not None else 1


def node_gpu_models(node: dict[str, Any]) -> list[tuple[str, int]]:
    """(model name, memory MiB) of every GPU the node has, whoever holds it."""
    return [(model, memory) for _, _, model, memory, _, _ in node_inventory(node).gpus]


def _gpus_of(inventory: NodeInventory) -> tuple[tuple[int, str, str, int, bool, bool], ...]:
    """(index, uuid, model name, memory MiB, MIG mode, simulated) per GPU runai-lite may use.

    From the agent's inventory when there is one (real UUIDs); otherwise from the device plugin's
    `nvidia.com/gpu` capacity and GPU feature discovery's product and memory labels. There the
    UUIDs are stand-ins (`<node>-gpu-<i>`): the real one of a shared GPU is what its reservation
    pod reports, and whole GPUs get theirs from the device plugin.
    """
    if inventory.inventory is not None:
        return inventory.inventory
    name = inventory.name
    count = inventory.plugin_gpus
    model = product_model(inventory.product)
    memory = inventory.memory_label or (model.memory_mib if model else 1)
    return tuple((i, f"{name}-gpu-{i}", model.name if model else inventory.product, memory, inventory.mig_label, False)
                 for i in range(count))


def product_model(product: str) -> GpuModel | None:
    """The catalog model of a GPU feature discovery product label (`NVIDIA-A100-SXM4-40GB`, `Tesla-T4`:
    GFD writes the vendor prefix with a dash where NVML has a space)."""
    catalog = default_catalog()
    return catalog.find(product) or catalog.find(re.sub(r"^(NVIDIA|Tesla)-", r"\1 ", product))

