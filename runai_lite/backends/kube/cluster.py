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
from dataclasses import dataclass, field
from typing import Any

from ...gpu.catalog import GpuModel, default_catalog
from ...model import Allocation, Gpu, Job, JobStatus, MigInstance, Node, Project, Snapshot
from ...units import MiB
from . import allocations
from . import conventions as k
from .manifests import InvalidRequest, mig_limits, pod_job_type, pod_request, whole_gpus
from .meta import Meta
from .predicates import (Filtered, NodeUsage, Resources, Volumes, allocatable, filter_nodes, node_facts,
                         pod_requests, shape, usage_by_node)


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
    """The scheduler's snapshot and the indexes the controller applies a plan with; job types are
    read against the install's `priority_classes`."""
    batch_jobs = {uid: job for job in objects.jobs if (uid := Meta(job).uid)}
    projects_by_namespace = {
        Meta(ns).name: Meta(ns).labels[k.QUEUE_LABEL] for ns in objects.namespaces if k.QUEUE_LABEL in Meta(ns).labels
    }
    view = ClusterView(snapshot=Snapshot(), pods={}, batch_jobs=batch_jobs,
                       nodes={Meta(n).name: n for n in objects.nodes}, reservations={}, desired={},
                       actual={}, projects_by_namespace=projects_by_namespace, volumes=objects.volumes,
                       priority_classes=priority_classes or k.PriorityClassNames())

    recorded = _recorded_allocations(view, objects)
    foreign: dict[str, ForeignDevices] = {}
    jobs: list[Job] = []
    for pod in objects.pods:
        meta = Meta(pod)
        if meta.namespace == k.RESERVATION_NAMESPACE and meta.label("app") == k.RESERVATION_APP:
            try:
                key = (meta.annotations[k.RESERVATION_NODE], int(meta.annotations[k.RESERVATION_GPU]))
            except (KeyError, ValueError):
                continue
            view.reservations[key] = pod
        elif is_ours(pod) and not _placed_elsewhere(pod, recorded):
            if is_finished(pod):
                continue
            if meta.deleting:
                # A stopping pod holds what it holds until it is gone: its containers run through
                # the grace period and the device plugin gives its GPU to no one before. The
                # scheduler sees it as a preempted job still stopping (the embedded mode's rule),
                # so a preemptor waits for it. Claimed but never bound, it holds nothing.
                job = _job_of(pod, view) if (pod.get("spec") or {}).get("nodeName") else None
                if job is not None and job.allocation is not None:
                    jobs.append(job.model_copy(update={"status": JobStatus.PREEMPTED}))
                    view.stopping[job.id] = pod
                continue
            job = _job_of(pod, view)
            if job is not None:
                jobs.append(job)
                view.pods[job.id] = pod
        else:
            node = (pod.get("spec") or {}).get("nodeName")
            if node and not is_finished(pod):
                foreign.setdefault(node, ForeignDevices()).add(pod)

    jobs, usage = _filter_pending(view, jobs, objects)
    nodes = [_node_of(n, view, foreign.get(Meta(n).name, ForeignDevices()), jobs, usage.get(Meta(n).name))
             for n in objects.nodes]
    names = set(projects_by_namespace.values()) | {j.project for j in jobs}
    deserved = {projects_by_namespace[Meta(ns).name]: k.parse_deserved(Meta(ns).annotation(k.DESERVED_GPUS))
                for ns in objects.namespaces if Meta(ns).name in projects_by_namespace}
    projects = tuple(Project(name=name, deserved_gpus=deserved.get(name, 0.0)) for name in sorted(names))
    view.snapshot = Snapshot(nodes=tuple(nodes), jobs=tuple(jobs), projects=projects)
    return view


def _filter_pending(view: ClusterView, jobs: list[Job], objects: ClusterObjects
                    ) -> tuple[list[Job], dict[str, NodeUsage]]:
    """Give each pending job the nodes kube-scheduler's filters allow it, against what every pod
    bound or claimed (ours: allocated, maybe not bound yet) already takes; and that use per node."""
    placed = {}
    for job in jobs:
        if job.allocation is not None:
            meta = Meta(view.pods.get(job.id) or view.stopping[job.id])
            placed[f"{meta.namespace}/{meta.name}"] = job.allocation.node
    usage = usage_by_node(objects.pods, placed)
    nodes = node_facts(objects.nodes, usage)
    out = []
    by_shape: dict[str, Filtered] = {}
    for job in jobs:
        if job.allocation is None:
            pod = view.pods[job.id]
            key = shape(pod)
            if key not in by_shape:
                by_shape[key] = filter_nodes(pod, nodes, objects.volumes)
            filtered = by_shape[key]
            view.filtered[job.id] = filtered
            job = job.model_copy(update={"eligible_nodes": filtered.eligible})
        out.append(job)
    return out, usage


def _recorded_allocations(view: ClusterView, objects: ClusterObjects) -> set[str]:
    """Index the Allocation objects that speak for a live, unfinished pod of this incarnation
    (matching UID) into the view; the others are stale (the controller deletes them). Returns the
    job ids that hold something."""
    live = {(Meta(p).namespace, Meta(p).name): p for p in objects.pods}
    for obj in objects.allocations:
        held = allocations.held_by(obj)
        pod = live.get(held[:2]) if held else None
        allocation = allocations.parse(obj)
        if pod is None or held is None or Meta(pod).uid != held[2] or is_finished(pod) or allocation is None:
            view.stale_allocations.append(obj)
            continue
        job = k.job_id(*held[:2])
        view.allocations[job] = allocation
        view.allocation_objects[job] = obj
    return set(view.allocations)


def _placed_elsewhere(pod: dict[str, Any], recorded: set[str]) -> bool:
    """Our scheduler name, but on a node without an allocation of ours (its nodeName was written by
    hand): counted like another scheduler's pod."""
    meta = Meta(pod)
    return bool((pod.get("spec") or {}).get("nodeName")) and k.job_id(meta.namespace or "", meta.name) not in recorded


def _job_of(pod: dict[str, Any], view: ClusterView) -> Job | None:
    meta = Meta(pod)
    try:
        request = pod_request(pod)
    except InvalidRequest as error:
        view.invalid.append((pod, str(error)))
        return None
    # The namespace alone names the project: a pod's own `runai/queue` label is the user's to write.
    project = view.projects_by_namespace.get(meta.namespace or "")
    if not project:
        view.invalid.append((pod, f"namespace {meta.namespace} is not a project (no {k.QUEUE_LABEL} label); "
                                  "submit into runai-<project>"))
        return None
    owner = view.owner_job(pod)
    try:
        job_type = pod_job_type(pod, owner, view.priority_classes)
    except InvalidRequest as error:
        view.invalid.append((pod, str(error)))
        return None
    job_id = k.job_id(meta.namespace or "", meta.name)
    allocation = view.allocations.get(job_id)
    submitted = k.parse_time(Meta(owner or pod).creation_timestamp) or 0.0
    host = pod_requests(pod)
    return Job(
        id=job_id,
        name=meta.label(k.JOB_NAME_LABEL) or (Meta(owner).name if owner else meta.name),
        project=project,
        type=job_type,
        request=request,
        status=JobStatus.RUNNING if allocation else JobStatus.PENDING,
        submitted_at=submitted,
        started_at=k.parse_time(allocations.bound_at(view.allocation_objects[job_id])) if allocation else None,
        allocation=allocation,
        cpu_milli=host.cpu_milli,
        memory_mib=-(-host.memory // MiB),
    )


def gpu_inventory(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The agent's report of the node's GPUs, or [] when no agent published one."""
    text = Meta(node).annotation(k.GPU_INVENTORY)
    if not text:
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

    def add(self, pod: dict[str, Any]) -> None:
        self.gpus += whole_gpus(pod)
        ref = k.job_id(Meta(pod).namespace or "", Meta(pod).name)
        for profile, count in mig_limits(pod).items():
            self.mig.setdefault(profile, []).extend([ref] * count)


def _mark_foreign_mig(gpus: list[Gpu], foreign: dict[str, list[str]]) -> list[Gpu]:
    """The device plugin handed each foreign MIG request one device of its profile, which one only the
    node knows: as many idle instances of that profile (lowest GPU, then slice, first) are taken as
    used by those pods, so the scheduler neither gives nor destroys them (the agent's in-use check
    protects the one really in use)."""
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


def _without_foreign_gpus(gpus: list[Gpu], count: int, held: set[int]) -> list[Gpu]:
    """Leave out `count` GPUs the device plugin gave other schedulers' pods: it hands out only GPUs not
    in MIG mode, and none a pod of ours holds; which ones it chose only the node knows, so the
    highest indices of the others go."""
    candidates = sorted((g.index for g in gpus if not g.mig_enabled and g.index not in held), reverse=True)
    drop = set(candidates[:count])
    return [g for g in gpus if g.index not in drop]


def _node_of(node: dict[str, Any], view: ClusterView, foreign: ForeignDevices, jobs: list[Job],
             used: NodeUsage | None) -> Node:
    name = Meta(node).name
    labels = Meta(node).labels
    annotations = Meta(node).annotations
    dynamic = labels.get(k.DYNAMIC_MIG_LABEL) == "true"
    mig_label = labels.get(k.MIG_ENABLED_LABEL) == "true"

    actual, report = k.decode_layout(annotations.get(k.MIG_ACTUAL))
    view.actual[name] = actual
    if report.get("errors"):
        view.agent_errors[name] = [str(e) for e in report["errors"]]
    if k.MIG_DESIRED in annotations:
        desired, _ = k.decode_layout(annotations[k.MIG_DESIRED])
    else:  # adopt what exists: partitions made before runai-lite (or its desired layout) was there
        desired = {i: [{"profile": x["profile"], "start": x["start"]} for x in items] for i, items in actual.items()}
    view.desired[name] = desired

    users = {(a.gpu_indices[0], a.mig_start, a.mig_profile): j.id for j in jobs
             if (a := j.allocation) is not None and a.kind == "mig" and a.node == name and a.gpu_indices}
    gpus = []
    for index, uuid, model_name, memory, mig_enabled, simulated in _gpus_of(node, mig_label):
        model = default_catalog().find(model_name)
        instances = tuple(
            MigInstance(profile=item["profile"], start=item["start"], size=_slices(model, item["profile"]),
                        uuid=view.mig_uuid(name, index, item["profile"], item["start"]),
                        job=users.get((index, item["start"], item["profile"])))
            for item in desired.get(index, []))
        gpus.append(Gpu(index=index, uuid=view.reserved_uuid(name, index) or uuid,
                        model=model.name if model else model_name, memory_mib=memory,
                        dynamic_mig=dynamic and bool(model and model.mig_capable),
                        mig_enabled=mig_enabled, simulated=simulated, mig_instances=instances))
    held = {i for j in jobs if (a := j.allocation) is not None and a.node == name for i in a.gpu_indices}
    held |= {i for (where, i) in view.reservations if where == name}
    gpus = _mark_foreign_mig(_without_foreign_gpus(gpus, foreign.gpus, held), foreign.mig)
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (node.get("status") or {}).get("conditions") or [])
    no_conditions = not (node.get("status") or {}).get("conditions")
    schedulable = not (node.get("spec") or {}).get("unschedulable") and (ready or no_conditions)
    room = allocatable(node)
    if room is None:  # a node that reports no allocatable resources: not tracked
        return Node(name=name, gpus=tuple(gpus), schedulable=schedulable)
    # The scheduler counts its own jobs' CPU and memory; what other pods take is gone from the start.
    held = [j for j in jobs if j.allocation is not None and j.allocation.node == name]
    ours = Resources(cpu_milli=sum(j.cpu_milli for j in held), memory=sum(j.memory_mib for j in held) * MiB)
    free = room - ((used.requested if used else Resources()) - ours)
    return Node(name=name, gpus=tuple(gpus), schedulable=schedulable, cpu_milli=max(0, free.cpu_milli),
                memory_mib=max(0, free.memory // MiB))


def _slices(model: GpuModel | None, profile: str) -> int:
    found = model.find_profile(profile) if model is not None else None
    return found.memory_slices if found is not None else 1


def node_gpu_models(node: dict[str, Any]) -> list[tuple[str, int]]:
    """(model name, memory MiB) of every GPU the node has, whoever holds it."""
    return [(model, memory) for _, _, model, memory, _, _ in _gpus_of(node, False)]


def _gpus_of(node: dict[str, Any], mig_label: bool) -> list[tuple[int, str, str, int, bool, bool]]:
    """(index, uuid, model name, memory MiB, MIG mode, simulated) per GPU runai-lite may use.

    From the agent's inventory when there is one (real UUIDs); otherwise from the device plugin's
    `nvidia.com/gpu` capacity and GPU feature discovery's product and memory labels. There the
    UUIDs are stand-ins (`<node>-gpu-<i>`): the real one of a shared GPU is what its reservation
    pod reports, and whole GPUs get theirs from the device plugin.
    """
    name = Meta(node).name
    inventory = gpu_inventory(node)
    if inventory:
        return [(int(g["index"]), str(g.get("uuid") or f"{name}-gpu-{g['index']}"), str(g.get("name", "")),
                 int(g.get("memory_mib") or 1), bool(g.get("mig_enabled", mig_label)), bool(g.get("simulated")))
                for g in sorted(inventory, key=lambda g: int(g["index"]))]
    status = node.get("status") or {}
    count = int(k.parse_quantity((status.get("allocatable") or status.get("capacity") or {}).get(k.GPU_RESOURCE)))
    product = Meta(node).label(k.GPU_PRODUCT_LABEL) or "unknown"
    model = product_model(product)
    memory = int(k.parse_quantity(Meta(node).label(k.GPU_MEMORY_LABEL))) or (model.memory_mib if model else 1)
    return [(i, f"{name}-gpu-{i}", model.name if model else product, memory, mig_label, False) for i in range(count)]


def product_model(product: str) -> GpuModel | None:
    """The catalog model of a GPU feature discovery product label (`NVIDIA-A100-SXM4-40GB`, `Tesla-T4`:
    GFD writes the vendor prefix with a dash where NVML has a space)."""
    catalog = default_catalog()
    return catalog.find(product) or catalog.find(re.sub(r"^(NVIDIA|Tesla)-", r"\1 ", product))

