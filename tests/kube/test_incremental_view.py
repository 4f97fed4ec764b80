"""The controller's `ViewBuilder` keeps what it derived from each object between passes and derives
again only what changed: after any sequence of object changes, its view is the one a fresh build
of the same objects gives (a hypothesis property), and what a pass changes in a view (the binder
edits desired layouts in place) never leaks into the next."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runai_lite.backends.kube import allocations
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.cluster import ClusterObjects, ClusterView, ViewBuilder, build_view
from runai_lite.model import Allocation

NODES = ("n0", "n1", "n2")
NAMESPACES = ("runai-p0", "runai-p1", "plain")
POD_NAMES = ("a", "b", "c")


class World:
    """A small cluster as plain API objects; every change bumps the resourceVersion, as the API
    server does."""

    def __init__(self) -> None:
        self.version = 0
        self.nodes: dict[str, dict[str, Any]] = {}
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.allocations: dict[tuple[str, str], dict[str, Any]] = {}
        for name in NODES:
            self.set_node(name, mig=name == "n0", inventory=name != "n2", cpu="8", unschedulable=False)
        for name in NAMESPACES:
            self.set_namespace(name, queue=name != "plain", deserved="2")

    def stamp(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        obj["metadata"]["resourceVersion"] = str(self.version)
        return obj

    def set_node(self, name: str, mig: bool, inventory: bool, cpu: str, unschedulable: bool) -> None:
        labels = {k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB", k.GPU_MEMORY_LABEL: "40960"}
        annotations = {k.REPORTED_BY: name}  # (what the agent writes beside its reports)
        if mig:
            labels |= {k.DYNAMIC_MIG_LABEL: "true", k.MIG_ENABLED_LABEL: "true"}
            annotations[k.MIG_ACTUAL] = k.encode_layout(
                {0: [{"profile": "1g.5gb", "start": 0, "size": 1, "uuid": f"MIG-{name}-0", "gi_id": 0}]},
                errors=[], waiting=[])
        if inventory:
            annotations[k.GPU_INVENTORY] = json.dumps(
                [{"index": g, "uuid": f"GPU-{name}-{g}", "name": "A100-SXM4-40GB", "memory_mib": 40960,
                  "mig_enabled": mig} for g in range(2)])
        self.nodes[name] = self.stamp({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "spec": {"unschedulable": True} if unschedulable else {},
            "status": {"allocatable": {k.GPU_RESOURCE: "2", "cpu": cpu, "memory": "64Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}})

    def set_namespace(self, name: str, queue: bool, deserved: str) -> None:
        self.namespaces[name] = self.stamp({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {k.QUEUE_LABEL: name.removeprefix("runai-")} if queue else {},
                         "annotations": {k.DESERVED_GPUS: deserved}}})

    def add_pod(self, namespace: str, name: str, request: str, owned: bool, job_type: str | None) -> None:
        key = (namespace, name)
        self.remove_pod(key)
        annotations = {"gpu-fraction": "0.5"} if request == "fraction" else {}
        if request == "mig":
            annotations[k.MIG_PROFILE] = "1g.5gb"
        if request == "invalid":
            annotations["gpu-fraction"] = "lots"
        limits = {k.GPU_RESOURCE: "1"} if request == "whole" else {}
        metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"uid-{self.version}",
                                    "annotations": annotations, "labels": {},
                                    "creationTimestamp": "2026-12-01T00:00:00Z"}
        if owned:
            job = self.stamp({"apiVersion": "batch/v1", "kind": "Job",
                              "metadata": {"name": name, "namespace": namespace, "uid": f"job-{self.version}",
                                           "labels": {k.PRIORITY_LABEL: job_type} if job_type else {},
                                           "creationTimestamp": "2026-12-01T00:00:00Z"}})
            self.jobs[key] = job
            metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                            "uid": job["metadata"]["uid"]}]
        self.pods[key] = self.stamp({
            "apiVersion": "v1", "kind": "Pod", "metadata": metadata,
            "spec": {"schedulerName": k.SCHEDULER_NAME,
                     "containers": [{"name": "main", "resources": {"limits": limits, "requests": {"cpu": "1"}}}]},
            "status": {"phase": "Pending"}})

    def add_foreign_pod(self, node: str, gpus: int, mig: bool) -> None:
        self.pods[("other", f"foreign-{node}")] = self.stamp({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"foreign-{node}", "namespace": "other", "uid": f"f-{self.version}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "resources": {
                "limits": {k.RUNAI_MIG_PREFIX + "1g.5gb": str(gpus)} if mig else {k.GPU_RESOURCE: str(gpus)},
                "requests": {"cpu": "2"}}}]},
            "status": {"phase": "Running"}})

    def claim(self, key: tuple[str, str], node: str, gpu: int, bind: bool) -> None:
        pod = self.pods.get(key)
        if pod is None or k.SCHEDULER_NAME != pod["spec"].get("schedulerName"):
            return
        annotations = pod["metadata"]["annotations"]
        if k.MIG_PROFILE in annotations:
            allocation = Allocation(kind="mig", node=node, gpu_indices=(gpu,), gpu_uuids=(f"GPU-{node}-{gpu}",),
                                    mig_profile="1g.5gb", mig_start=0, mig_size=1, memory_mib=4864)
        elif "gpu-fraction" in annotations:
            allocation = Allocation(kind="fraction", node=node, gpu_indices=(gpu,),
                                    gpu_uuids=(f"GPU-{node}-{gpu}",), share_milli=500, memory_mib=20480)
        else:
            allocation = Allocation(kind="gpu", node=node, gpu_indices=(gpu,), gpu_uuids=(f"GPU-{node}-{gpu}",))
        self.allocations[key] = self.stamp(allocations.allocation_object(pod, allocation, "2026-12-01T00:00:01Z"))
        if bind:
            pod = copy.deepcopy(pod)
            pod["spec"]["nodeName"] = node
            pod["status"]["phase"] = "Running"
            self.pods[key] = self.stamp(pod)

    def change_pod(self, key: tuple[str, str], change: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        pod = copy.deepcopy(pod)
        if change == "finish":
            pod["status"]["phase"] = "Succeeded"
        elif change == "terminate":
            pod["metadata"]["deletionTimestamp"] = "2026-12-01T00:01:00Z"
        elif change == "annotate":
            pod["metadata"]["annotations"]["touched"] = str(self.version)
        elif change == "hand-bind":
            pod["spec"]["nodeName"] = NODES[1]
        self.pods[key] = self.stamp(pod)

    def relabel_job(self, key: tuple[str, str], job_type: str | None) -> None:
        job = self.jobs.get(key)
        if job is not None:
            job = copy.deepcopy(job)
            job["metadata"]["labels"] = {k.PRIORITY_LABEL: job_type} if job_type else {}
            self.jobs[key] = self.stamp(job)

    def remove_pod(self, key: tuple[str, str]) -> None:
        self.pods.pop(key, None)
        self.jobs.pop(key, None)  # (its Allocation object stays: stale until the controller deletes it)

    def reserve(self, node: str, gpu: int, reported: bool) -> None:
        name = f"runai-reservation-{node}-{gpu}"
        annotations = {k.RESERVATION_NODE: node, k.RESERVATION_GPU: str(gpu)}
        if reported:
            annotations[k.RESERVED_UUID] = f"GPU-{node}-{gpu}-reported"
        self.pods[(k.RESERVATION_NAMESPACE, name)] = self.stamp({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": k.RESERVATION_NAMESPACE, "uid": f"r-{self.version}",
                         "labels": {"app": k.RESERVATION_APP}, "annotations": annotations},
            "spec": {"nodeName": node, "containers": [{"name": "r"}]}, "status": {"phase": "Running"}})

    def objects(self) -> ClusterObjects:
        """What a read returns: shallow copies, as the watch cache hands them out."""
        return ClusterObjects(nodes=[dict(o) for o in self.nodes.values()],
                              namespaces=[dict(o) for o in self.namespaces.values()],
                              pods=[dict(o) for o in self.pods.values()], jobs=[dict(o) for o in self.jobs.values()],
                              allocations=[dict(o) for o in self.allocations.values()], version=self.version)


def summary(view: ClusterView) -> dict[str, Any]:
    """Everything of a view the controller reads, comparable."""
    return {
        "snapshot": view.snapshot,
        "pods": sorted(view.pods), "stopping": sorted(view.stopping),
        "reservations": sorted(view.reservations), "desired": view.desired, "actual": view.actual,
        "agent_errors": view.agent_errors, "allocations": view.allocations,
        "invalid": sorted((p["metadata"]["name"], why) for p, why in view.invalid),
        "filtered": view.filtered, "stale": sorted(o["metadata"]["name"] for o in view.stale_allocations),
        "projects": view.projects_by_namespace,
    }


keys = st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(POD_NAMES))
changes = st.one_of(
    st.tuples(st.just("add_pod"), st.sampled_from(NAMESPACES), st.sampled_from(POD_NAMES),
              st.sampled_from(["fraction", "whole", "mig", "none", "invalid"]), st.booleans(),
              st.sampled_from([None, "train", "interactive", "bogus"])),
    st.tuples(st.just("claim"), keys, st.sampled_from(NODES), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("change_pod"), keys, st.sampled_from(["finish", "terminate", "annotate", "hand-bind"])),
    st.tuples(st.just("remove_pod"), keys),
    st.tuples(st.just("relabel_job"), keys, st.sampled_from([None, "train", "interactive", "bogus"])),
    st.tuples(st.just("set_node"), st.sampled_from(NODES), st.booleans(), st.booleans(), st.sampled_from(["2", "8"]),
              st.booleans()),
    st.tuples(st.just("set_namespace"), st.sampled_from(NAMESPACES), st.booleans(), st.sampled_from(["0", "2"])),
    st.tuples(st.just("reserve"), st.sampled_from(NODES), st.integers(0, 1), st.booleans()),
    st.tuples(st.just("add_foreign_pod"), st.sampled_from(NODES), st.integers(0, 2), st.booleans()),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(changes, min_size=1, max_size=4), min_size=1, max_size=8))
@example([[("add_pod", "runai-p0", "a", "fraction", True, None)], [("relabel_job", ("runai-p0", "a"), "bogus")]])
@example([[("add_pod", "runai-p0", "a", "fraction", True, None), ("claim", ("runai-p0", "a"), "n2", 0, True)],
          [("reserve", "n2", 0, True)], [("add_foreign_pod", "n2", 1, False)], [("add_foreign_pod", "n0", 1, True)],
          [("change_pod", ("runai-p0", "a"), "terminate")]])
def test_the_incremental_view_is_the_view_built_from_scratch(passes):
    world = World()
    builder = ViewBuilder()
    for changes_between_passes in [[]] + passes:
        for name, *args in changes_between_passes:
            getattr(world, name)(*args)
        incremental = builder.build(world.objects())
        assert summary(incremental) == summary(build_view(world.objects()))
        # What a pass does to its view (a MIG layout changed in place, say) stays in that pass.
        for layouts in incremental.desired.values():
            layouts.setdefault(1, []).append({"profile": "7g.40gb", "start": 0})
            for items in layouts.values():
                for item in items:
                    item["required"] = True


def test_an_unchanged_cluster_is_derived_once():
    world = World()
    for i, name in enumerate(POD_NAMES):
        world.add_pod("runai-p0", name, "fraction", owned=True, job_type=None)
        world.claim(("runai-p0", name), NODES[i % 2 + 1], i % 2, bind=True)
    world.add_pod("runai-p1", "waiting", "whole", owned=True, job_type=None)
    builder = ViewBuilder()
    first = builder.build(world.objects())
    memos = (builder._pods, builder._jobs, builder._nodes, builder._node_models, builder._allocations)
    before = [m.derived for m in memos]
    second = builder.build(world.objects())
    assert [m.derived for m in memos] == before  # nothing derived again
    assert summary(first) == summary(second)

    world.change_pod(("runai-p0", POD_NAMES[0]), "annotate")
    builder.build(world.objects())
    # that pod's facts and job again; what its node holds did not change, nor anything else
    assert [m.derived - b for m, b in zip(memos, before, strict=True)] == [1, 1, 0, 0, 0]
