"""The in-cluster controller: a custom scheduler for pods that name `runai-lite-scheduler`.

Each pass is level-triggered: read the objects, build the snapshot, call the same
`scheduler.plan` as the embedded mode, and apply the plan. Applying is idempotent and ordered so
that a controller killed at any point leaves objects a fresh one can finish from:

1. preemption victims are evicted (Eviction API; their Job requeues them: the podFailurePolicy
   ignores `DisruptionTarget`);
2. MIG layout changes go into the node's desired-layout annotation (the agent realises them);
3. reservation pods get deterministic names, so AlreadyExists means done;
4. a bind first writes the allocation onto the pod (a merge patch carrying the pod's
   resourceVersion, so a stale or second controller gets 409 and does nothing); from then on the
   pod holds its resources in every snapshot. The ConfigMap is filled once the device UUID is known
   (reservation pod or agent report) and the pod is bound through `pods/binding`, which a bound
   pod refuses: no pod is ever bound twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...model import Allocation, Bind, CreateMig, DestroyMig, Plan, Preempt, Reserve, Snapshot
from . import conventions as k
from .rest import ApiError, core, group
from .cluster import ClusterView, build_view, read_objects
from .enforcement import node_enforcement
from .lease import LeaderLease
from .manifests import device_configmap, device_env, event, reservation_pod

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")

Planner = Callable[[Snapshot], Plan]


def default_planner() -> Planner:
    from ...scheduler import plan

    return plan


class Controller:
    def __init__(self, api: KubeApi, image: str, planner: Planner | None = None,
                 clock: Callable[[], float] = time.time):
        self.api = api
        self.image = image
        self.planner = planner or default_planner()
        self.clock = clock

    # -- one pass ------------------------------------------------------------------------------

    def reconcile_once(self) -> Plan:
        view = build_view(read_objects(self.api))
        waiting: dict[str, str] = {}
        for job_id, pod in view.pods.items():
            allocation = _allocation(pod)
            if allocation is not None and not pod["spec"].get("nodeName"):
                reason = self._complete_bind(view, pod, allocation)
                if reason:
                    waiting[job_id] = reason
        plan = self.planner(view.snapshot)
        self._apply(view, plan, waiting)
        self._sync_desired(view)
        self._sync_reservations(view)
        self._report(view, plan, waiting)
        return plan

    def _apply(self, view: ClusterView, plan: Plan, waiting: dict[str, str]) -> None:
        evicted = [self._preempt(view, action) for action in plan.of_type(Preempt)]
        if not all(evicted):
            # The rest of the plan counted on room a victim still holds (a disruption budget
            # refused, say): nothing more this pass; the next pass plans from what is there.
            return
        for action in plan.actions:
            if isinstance(action, DestroyMig | CreateMig):
                layout = view.desired.setdefault(action.node, {}).setdefault(action.gpu_index, [])
                layout[:] = [i for i in layout if i["start"] != action.start]
                if isinstance(action, CreateMig):
                    layout.append({"profile": action.profile, "start": action.start})
        # Layouts are written before any pod claims a partition in them (a restart in between
        # leaves an idle partition, never a claim on one the layout lacks).
        self._sync_desired(view)
        for action in plan.of_type(Reserve):
            self._reserve(view, action.node, action.gpu_index)
        for action in plan.of_type(Bind):
            pod = view.pods.get(action.job)
            if pod is None:
                continue
            if self._claim(pod, action.allocation):
                self._record(view, pod, "Scheduled", f"allocated {_describe(action.allocation)}: {action.reason}")
                reason = self._complete_bind(view, pod, action.allocation)
                if reason:
                    waiting[action.job] = reason

    # -- actions -------------------------------------------------------------------------------

    def _preempt(self, view: ClusterView, action: Preempt) -> bool:
        """Evict a victim; False when it could not be evicted and still holds its resources."""
        pod = view.pods.get(action.job)
        if pod is None:
            return True
        meta = pod["metadata"]
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"]}}
        try:
            self.api.create(core("pods", meta["namespace"], meta["name"], "eviction"), body)
        except ApiError as error:
            if error.not_found:
                return True
            self._record(view, pod, "PreemptionFailed", f"could not evict: {error}", warning=True)
            return False
        self._record(view, pod, "Preempted", action.reason, warning=True)
        self._set_status(view, pod, "Preempted", action.reason)
        view.pods.pop(action.job, None)
        return True

    def _sync_desired(self, view: ClusterView) -> None:
        """Write each node's desired MIG layout where it changed. A partition a pod holds is
        `required` (the agent creates it); an idle one is kept while it exists but not recreated
        (after a reboot, say) until a pod claims it again."""
        used = {(a.node, a.gpu_indices[0], a.mig_start) for pod in view.pods.values()
                if (a := _allocation(pod)) is not None and a.kind == "mig"}
        for node, layouts in view.desired.items():
            annotations = view.nodes[node]["metadata"].get("annotations") or {}
            if not any(layouts.values()) and k.MIG_DESIRED not in annotations:
                continue
            for index, items in layouts.items():
                for item in items:
                    item["required"] = (node, index, item["start"]) in used
            text = k.encode_layout(layouts)
            if text != annotations.get(k.MIG_DESIRED):
                self.api.merge_patch(core("nodes", name=node), {"metadata": {"annotations": {k.MIG_DESIRED: text}}})
                view.nodes[node]["metadata"].setdefault("annotations", {})[k.MIG_DESIRED] = text

    def _reserve(self, view: ClusterView, node: str, gpu_index: int) -> None:
        if (node, gpu_index) in view.reservations:
            return
        body = reservation_pod(node, gpu_index, self.image)
        self.api.create_if_absent(core("pods", k.RESERVATION_NAMESPACE), body)
        view.reservations[(node, gpu_index)] = body

    def _claim(self, pod: dict[str, Any], allocation: Allocation) -> bool:
        """Write the allocation onto the pod, on the condition that the pod is as we read it."""
        meta = pod["metadata"]
        patch: dict[str, Any] = {"metadata": {
            "resourceVersion": meta.get("resourceVersion"),
            "annotations": {k.ALLOCATION: k.encode_allocation(allocation), k.BOUND_AT: k.now_rfc3339(self._now())},
        }}
        if allocation.kind == "fraction":
            patch["metadata"]["labels"] = {k.GPU_GROUP_LABEL: k.gpu_group(allocation.node, allocation.gpu_indices[0])}
        try:
            updated = self.api.merge_patch(core("pods", meta["namespace"], meta["name"]), patch)
        except ApiError as error:
            if error.conflict or error.not_found:
                log.info("pod %s/%s changed since it was read; it is decided again next pass",
                         meta["namespace"], meta["name"])
                return False
            raise
        pod["metadata"] = updated.get("metadata", pod["metadata"])
        return True

    def _complete_bind(self, view: ClusterView, pod: dict[str, Any], allocation: Allocation) -> str | None:
        """Fill the ConfigMap and bind; the reason it must wait, when a device is not there yet."""
        uuids, waiting = self._device_uuids(view, allocation)
        if waiting:
            return waiting
        resolved = _with_uuids(allocation, uuids)
        meta = pod["metadata"]
        if resolved != allocation:
            self.api.merge_patch(core("pods", meta["namespace"], meta["name"]),
                                 {"metadata": {"annotations": {k.ALLOCATION: k.encode_allocation(resolved)}}})
        node = view.nodes.get(allocation.node)
        env = device_env(resolved, uuids, node_enforcement(node) if node else None)
        owner = view.owner_job(pod)
        owner_ref = _owner_ref(owner or pod)
        configmap = device_configmap(pod, env, owner_ref)
        if not self.api.create_if_absent(core("configmaps", meta["namespace"]), configmap):
            # Left from the job's previous pod (a requeue): its keys are replaced, stale ones removed.
            path = core("configmaps", meta["namespace"], configmap["metadata"]["name"])
            stale = self.api.get(path).get("data") or {}
            self.api.merge_patch(path, {"data": {**{key: None for key in stale}, **env}})
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"]},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": allocation.node}}
        try:
            self.api.create(core("pods", meta["namespace"], meta["name"], "binding"), binding)
        except ApiError as error:
            if error.conflict:  # already bound: by us before a restart
                return None
            if error.not_found:
                return None
            raise
        pod["spec"]["nodeName"] = allocation.node
        self._record(view, pod, "Bound", f"bound to {_describe(resolved)}")
        return None

    def _device_uuids(self, view: ClusterView, allocation: Allocation) -> tuple[list[str], str | None]:
        node = allocation.node
        if allocation.kind == "fraction":
            uuids = [view.reserved_uuid(node, i) for i in allocation.gpu_indices]
            if not all(uuids):
                return [], (f"waiting for the reservation pod of {node} GPU {allocation.gpu_indices[0]} "
                            "to report its GPU")
            return [u for u in uuids if u], None
        if allocation.kind == "mig":
            assert allocation.mig_profile is not None and allocation.mig_start is not None
            uuid = view.mig_uuid(node, allocation.gpu_indices[0], allocation.mig_profile, allocation.mig_start)
            if not uuid:
                errors = "; ".join(view.agent_errors.get(node, []))
                reason = (f"waiting for the node agent on {node} to create MIG partition {allocation.mig_profile} "
                          f"at slice {allocation.mig_start} of GPU {allocation.gpu_indices[0]}")
                return [], reason + (f" (agent reports: {errors})" if errors else "")
            return [uuid], None
        return [], None

    def _sync_reservations(self, view: ClusterView) -> None:
        """One reservation pod per GPU that fraction pods hold, none for others (KAI's sync rule).
        One the kubelet refused (no free device: another scheduler took the GPU first) is deleted
        and made again once it is gone, so that its fractions do not wait on it forever."""
        held = set()
        for pod in view.pods.values():
            allocation = _allocation(pod)
            if allocation is not None and allocation.kind == "fraction":
                held.update((allocation.node, i) for i in allocation.gpu_indices)
        for key, pod in list(view.reservations.items()):
            created_now = not pod["metadata"].get("uid")
            failed = (pod.get("status") or {}).get("phase") == "Failed"
            if not created_now and (key not in held or failed) and not pod["metadata"].get("deletionTimestamp"):
                self.api.delete(core("pods", k.RESERVATION_NAMESPACE, pod["metadata"]["name"]))
                del view.reservations[key]
        for key in sorted(held - view.reservations.keys()):
            self._reserve(view, *key)

    # -- reporting -----------------------------------------------------------------------------

    def _report(self, view: ClusterView, plan: Plan, waiting: dict[str, str]) -> None:
        for pod, message in view.invalid:
            self._set_status(view, pod, "Pending", message, event_reason="InvalidRequest")
        for job_id, pod in view.pods.items():
            if job_id in waiting:
                self._set_status(view, pod, "Pending", waiting[job_id], event_reason="WaitingForDevice")
            elif pod["spec"].get("nodeName") and _allocation(pod) is not None:
                self._set_status(view, pod, "Running", None)
            elif (reason := plan.pending_reason(job_id)) is not None:
                self._set_status(view, pod, "Pending", reason, event_reason="Unschedulable")

    def _set_status(self, view: ClusterView, pod: dict[str, Any], status: str, reason: str | None,
                    event_reason: str | None = None) -> None:
        """Write `runai-calculated-status` and the pending reason on the pod's Job (or the pod),
        with an Event when the reason changed."""
        target = view.owner_job(pod) or pod
        annotations = target["metadata"].get("annotations") or {}
        previous = annotations.get(k.PENDING_REASON)
        if annotations.get(k.STATUS) == status and previous == reason:
            return
        meta = target["metadata"]
        path = (group("batch/v1", "jobs", meta["namespace"], meta["name"]) if target is not pod
                else core("pods", meta["namespace"], meta["name"]))
        try:
            self.api.merge_patch(path, {"metadata": {"annotations": {k.STATUS: status, k.PENDING_REASON: reason}}})
        except ApiError as error:
            if not error.not_found:
                raise
            return
        target["metadata"].setdefault("annotations", {}).update({k.STATUS: status, k.PENDING_REASON: reason})
        if event_reason and reason and previous != reason:
            self._record(view, pod, event_reason, reason, warning=event_reason == "InvalidRequest")

    def _record(self, view: ClusterView, pod: dict[str, Any], reason: str, message: str,
                warning: bool = False) -> None:
        target = view.owner_job(pod) or pod
        body = event(target, reason, message, k.now_rfc3339(self._now()), warning)
        try:
            self.api.create(core("events", target["metadata"]["namespace"]), body)
        except ApiError as error:  # events are best effort: never stop a plan for one
            log.warning("could not record event %s on %s: %s", reason, target["metadata"]["name"], error)

    def _now(self):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self.clock(), UTC)

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, identity: str, namespace: str = k.SYSTEM_NAMESPACE,
            resync_seconds: float = 5.0) -> None:
        """Reconcile while holding the Lease, on every watched change and every `resync_seconds`."""
        lease = LeaderLease(self.api, namespace, k.LEASE_NAME, identity, clock=self.clock)
        wake = threading.Event()
        for path, selector in WATCHES:
            threading.Thread(target=_watch_forever, args=(self.api, path, selector, wake, stop),
                             name=f"watch {path}", daemon=True).start()
        while not stop.is_set():
            try:
                if lease.acquire_or_renew():
                    self.reconcile_once()
            except Exception:  # a pass that failed is retried from fresh objects on the next one
                log.exception("reconcile pass failed")
            wake.wait(timeout=min(resync_seconds, lease.renew_seconds))
            wake.clear()
        lease.release()


WATCHES = (
    (core("pods"), {"field_selector": f"spec.schedulerName={k.SCHEDULER_NAME}"}),
    (core("pods", k.RESERVATION_NAMESPACE), {"label_selector": f"app={k.RESERVATION_APP}"}),
    (core("nodes"), {}),
    (group("batch/v1", "jobs"), {"label_selector": k.JOB_NAME_LABEL}),
)


def _watch_forever(api: KubeApi, path: str, selector: dict[str, str], wake: threading.Event,
                   stop: threading.Event) -> None:
    """Set `wake` on every change under `path`; reconnect (from a fresh list) when the stream ends."""
    while not stop.is_set():
        try:
            _, version = api.list_with_version(path, **selector)
            for change in api.watch(path, version, timeout_seconds=60, **selector):
                if change.get("type") != "BOOKMARK":
                    wake.set()
                if stop.is_set():
                    return
        except Exception as error:  # the API went away: try again shortly
            log.debug("watch of %s ended: %s", path, error)
            stop.wait(2.0)


def _allocation(pod: dict[str, Any]) -> Allocation | None:
    return k.decode_allocation((pod["metadata"].get("annotations") or {}).get(k.ALLOCATION))


def _with_uuids(allocation: Allocation, uuids: list[str]) -> Allocation:
    if allocation.kind == "fraction" and uuids:
        return allocation.model_copy(update={"gpu_uuids": tuple(uuids)})
    if allocation.kind == "mig" and uuids:
        return allocation.model_copy(update={"mig_uuid": uuids[0]})
    return allocation


def _owner_ref(obj: dict[str, Any]) -> dict[str, str] | None:
    uid = obj["metadata"].get("uid")
    if not uid:
        return None
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": obj["metadata"]["name"], "uid": uid}


def _describe(allocation: Allocation) -> str:
    if not allocation.gpu_indices:
        return allocation.node
    where = f"{allocation.node} GPU {','.join(map(str, allocation.gpu_indices))}"
    if allocation.kind == "mig":
        return f"MIG {allocation.mig_profile} on {where}"
    if allocation.kind == "fraction":
        return f"{allocation.share_milli / 1000:g} of {where}"
    return where
