"""The binder: every write that gives a pod its place (KAI's binder and evictor).

Each step is idempotent, so a controller killed between any two leaves objects a fresh one
finishes from:

- an eviction goes through the Eviction API; a victim that belongs to a Job is first taken out of
  the Job's accounting (its `batch.kubernetes.io/job-tracking` finalizer removed), so that however
  it ends (exit 0 on SIGTERM included) the Job neither completes nor counts a failure, and makes a
  new pod once it is gone: the job is requeued;
- a node's desired MIG layout goes into its `runai-lite/mig-desired` annotation, which the agent
  realises;
- a reservation pod has a deterministic name, so AlreadyExists means done;
- a claim first patches the pod with the resourceVersion that was read (a stale or second
  controller gets 409 and does nothing; the patch also mirrors the allocation into the pod's
  annotation, for people), then creates the pod's Allocation object (`allocations.py`), which is
  what every later snapshot reads: from then on the pod holds its resources;
- once the device UUID is known (reservation pod or agent report) the pod's ConfigMap is filled and
  the pod bound through `pods/binding`, which a bound pod refuses: no pod is bound twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Any

from ...devices import CDI_ANNOTATION, DeliveryMode, grant, pod_delivery
from ...model import Allocation, CreateMig, DestroyMig, Preempt
from . import conventions as k
from . import allocations
from .cluster import ClusterView, is_finished, is_ours
from .delivery import node_delivery, plugin_delivers, plugin_not_ready
from .enforcement import pod_enforcement
from .manifests import device_configmap, is_device_configmap_of, reservation_pod
from .meta import Meta, set_annotations
from .predicates import SELECTED_NODE, claims_to_bind
from .reservations import EXPECTED_UUID, GpuKey, ReservationLedger
from .rest import ApiError, core, group
from .status import StatusWriter

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")


class Binder:
    def __init__(self, api: KubeApi, image: str, status: StatusWriter,
                 monotonic: Callable[[], float] = time.monotonic, delivery: DeliveryMode = DeliveryMode.ENV,
                 runtime_class: str | None = None, install_name: str = "runai-lite"):
        """`delivery`: the cluster's device delivery mode (a node's label may override it);
        `runtime_class`: the RuntimeClass of the reservation pods; `install_name`: what the
        install's objects are named after, so the reservation pods run as its ServiceAccount and
        take its PriorityClasses."""
        self.api = api
        self.image = image
        self.delivery = delivery
        self.runtime_class = runtime_class
        self.status = status
        self.ledger = ReservationLedger(monotonic)
        self._mirrored: dict[str, tuple[str, Allocation]] = {}  # job -> (pod version, allocation) its mirror matched
        self.reservation_account = f"{install_name}-reservation"
        self.priority_classes = k.PriorityClassNames(prefix=f"{install_name}-")

    # -- evictions -------------------------------------------------------------------------------

    def evict(self, view: ClusterView, action: Preempt) -> Eviction:
        """Evict a victim. Until it is gone it holds what it holds (`view.stopping`)."""
        return self._evict(view, action.job, "Preempted", action.reason)

    def _evict(self, view: ClusterView, job: str, event_reason: str, message: str) -> Eviction:
        pod = view.pods.get(job)
        if pod is None:
            return Eviction.GONE
        meta = Meta(pod)
        untracked = view.owner_job(pod) is not None and self._track(pod, False)
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta.name, "namespace": meta.namespace}}
        try:
            self.api.create(core("pods", meta.namespace, meta.name, "eviction"), body)
        except ApiError as error:
            if error.not_found:
                return Eviction.GONE
            if untracked:  # it keeps running: how it ends counts again
                self._track(pod, True)
            self.status.record(view, pod, "PreemptionFailed", f"could not evict: {error}", warning=True)
            return Eviction.REFUSED
        self.status.record(view, pod, event_reason, message, warning=True)
        self.status.set_status(view, pod, "Preempted", message)
        view.pods.pop(job, None)
        now = self.api.get_or_none(core("pods", meta.namespace, meta.name))
        if now is None or Meta(now).uid != meta.uid or is_finished(now):
            return Eviction.GONE
        view.stopping[job] = now
        return Eviction.STOPPING

    def _track(self, pod: dict[str, Any], tracked: bool) -> bool:
        """Put a pod in or out of its Job's accounting (True when that changed it): the Job
        controller counts only the pods that carry its tracking finalizer, and replaces the
        others once they are gone."""
        meta = Meta(pod)
        if (TRACKING_FINALIZER in meta.finalizers) == tracked:
            return False
        finalizers = [f for f in meta.finalizers if f != TRACKING_FINALIZER] + ([TRACKING_FINALIZER] if tracked else [])
        try:
            updated = self.api.merge_patch(core("pods", meta.namespace, meta.name),
                                           {"metadata": {"finalizers": finalizers or None}})
        except ApiError as error:
            if error.not_found:
                return False
            raise
        pod["metadata"] = updated.get("metadata", pod["metadata"])
        return True

    def forgive_admission_failures(self, view: ClusterView, pods: list[dict[str, Any]]) -> None:
        """A pod of a Job that a kubelet refused at admission (its devices or resources were not
        free after all) is not the job's failure: untracked before the Job controller counts it,
        it is replaced like an evicted one. The Job controller may count it first; this narrows
        that race, the scheduler's accounting (terminating pods hold their devices) removes most of
        its causes."""
        for pod in pods:
            status = pod.get("status") or {}
            reason = str(status.get("reason") or "")
            if (not is_ours(pod) or status.get("phase") != "Failed" or TRACKING_FINALIZER not in Meta(pod).finalizers
                    or not (reason in ADMISSION_REASONS or reason.startswith("OutOf"))
                    or view.owner_job(pod) is None):
                continue
            self._track(pod, False)
            self.status.record(view, pod, "AdmissionRefused",
                               f"the kubelet of {pod['spec'].get('nodeName')} refused pod {Meta(pod).name} ({reason}); "
                               "it does not count against the job's backoff limit, and a new pod is placed",
                               warning=True)

    # -- MIG layouts -----------------------------------------------------------------------------

    @staticmethod
    def change_layout(view: ClusterView, action: CreateMig | DestroyMig) -> None:
        """Record a partition change in the view's desired layout (written by `sync_desired`)."""
        layout = view.desired.setdefault(action.node, {}).setdefault(action.gpu_index, [])
        layout[:] = [i for i in layout if i["start"] != action.start]
        if isinstance(action, CreateMig):
            layout.append({"profile": action.profile, "start": action.start})

    def sync_desired(self, view: ClusterView) -> None:
        """Write each node's desired MIG layout where it changed. A partition a pod holds is
        `required` (the agent creates it); an idle one is kept while it exists but not recreated
        (after a reboot, say) until a pod claims it again."""
        used = {(a.node, a.gpu_indices[0], a.mig_start) for job, _ in _holders(view)
                if (a := view.allocations.get(job)) is not None and a.kind == "mig"}
        for node, layouts in view.desired.items():
            annotations = Meta(view.nodes[node]).annotations
            if not any(layouts.values()) and k.MIG_DESIRED not in annotations:
                continue
            for index, items in layouts.items():
                for item in items:
                    item["required"] = (node, index, item["start"]) in used
            text = k.encode_layout(layouts)
            if text != annotations.get(k.MIG_DESIRED):
                self.api.merge_patch(core("nodes", name=node), {"metadata": {"annotations": {k.MIG_DESIRED: text}}})
                set_annotations(view.nodes[node], {k.MIG_DESIRED: text})

    # -- reservation pods ------------------------------------------------------------------------

    def reserve(self, view: ClusterView, node: str, gpu_index: int, expected_uuid: str | None = None) -> None:
        if (node, gpu_index) in view.reservations:
            return
        body = reservation_pod(node, gpu_index, self.image, self.reservation_account, self.priority_classes,
                               runtime_class=self.runtime_class)
        if expected_uuid:  # made again for fractions that run: it must get their GPU
            body["metadata"]["annotations"][EXPECTED_UUID] = expected_uuid
        self.api.create_if_absent(core("pods", k.RESERVATION_NAMESPACE), body)
        view.reservations[(node, gpu_index)] = body

    def sync_reservations(self, view: ClusterView) -> None:
        """One reservation pod per GPU that fraction pods hold, none for others (KAI's sync rule).
        A GPU whose fractions run gets its reservation pod again at once if it vanished, pinned to
        their GPU's UUID (`check_reservations` stops them if the device plugin gives another)."""
        held: dict[GpuKey, str | None] = {}
        for job, pod in _holders(view):
            allocation = view.allocations.get(job)
            if allocation is not None and allocation.kind == "fraction":
                key = (allocation.node, allocation.gpu_indices[0])  # a fraction is of one GPU
                running = pod["spec"].get("nodeName") and allocation.gpu_uuids
                held[key] = held.get(key) or (allocation.gpu_uuids[0] if running else None)
        for key, pod in list(view.reservations.items()):
            meta = Meta(pod)
            if meta.uid and key not in held and not meta.deleting:
                self.api.delete(core("pods", k.RESERVATION_NAMESPACE, meta.name))
                del view.reservations[key]
        resting = self.ledger.resting()
        for key in sorted(held.keys() - view.reservations.keys()):
            if key not in resting or held[key]:
                self.reserve(view, *key, expected_uuid=held[key])
        self.ledger.forget_except(uid for pod in view.reservations.values() if (uid := Meta(pod).uid))

    def check_reservations(self, view: ClusterView) -> bool:
        """Undo what waits on a reservation pod that failed its GPU (see `reservations.py`): roll
        back the claims waiting for it, stop the fractions running on a GPU no longer reserved for
        them, delete it, and rest the GPU. True when anything was undone (the view is stale)."""
        undone = False
        for key, pod in list(view.reservations.items()):
            meta = Meta(pod)
            failure = None if meta.deleting else self.ledger.failure(pod)
            if failure is None:
                if meta.annotation(k.RESERVED_UUID):
                    self.ledger.succeeded(key)
                continue
            node, index = key
            delay = self.ledger.failed(key)
            where = f"the reservation pod of {node} GPU {index} {failure}"
            for job, holder in list(view.pods.items()):
                allocation = view.allocation_of(holder)
                if allocation is None or allocation.kind != "fraction" or key not in _gpu_keys(allocation):
                    continue
                if holder["spec"].get("nodeName"):
                    self._evict(view, job, "ReservationLost",
                                f"{where}: stopped rather than share a GPU no longer reserved for it")
                elif self.unclaim(view, holder):
                    self.status.record(view, holder, "ReservationFailed",
                                       f"{where}: the claim is rolled back, that GPU is tried again in {delay:.0f} s",
                                       warning=True)
            self.api.delete(core("pods", k.RESERVATION_NAMESPACE, meta.name))
            del view.reservations[key]
            undone = True
        return undone

    def unclaim(self, view: ClusterView, pod: dict[str, Any]) -> bool:
        """Take a claim back from a pod not bound yet (on the condition that it is as we read it):
        its mirror, then its Allocation object."""
        meta = Meta(pod)
        patch = {"metadata": {"resourceVersion": meta.resource_version,
                              "annotations": {k.ALLOCATION: None, k.BOUND_AT: None},
                              "labels": {k.GPU_GROUP_LABEL: None}}}
        try:
            pod["metadata"] = self.api.merge_patch(core("pods", meta.namespace, meta.name), patch)["metadata"]
        except ApiError as error:
            if error.conflict or error.not_found:
                return False
            raise
        self.api.delete(allocations.path(meta.namespace, meta.name))
        view.allocations.pop(k.job_id(meta.namespace or "", meta.name), None)
        return True

    # -- claims and bindings ---------------------------------------------------------------------

    def claim(self, view: ClusterView, pod: dict[str, Any], allocation: Allocation) -> bool:
        """Record the allocation, on the condition that the pod is as we read it."""
        meta = Meta(pod)
        bound_at = k.now_rfc3339(self.status.now())
        owner = view.owner_job(pod)
        attempt = meta.annotation(k.ATTEMPT) or str(k.attempt_number(owner, k.ATTEMPTS_STARTED) + 1)
        patch: dict[str, Any] = {"metadata": {
            "resourceVersion": meta.resource_version,
            "annotations": {k.ALLOCATION: k.encode_allocation(allocation), k.BOUND_AT: bound_at, k.ATTEMPT: attempt},
        }}
        if allocation.kind == "fraction":
            patch["metadata"]["labels"] = {k.GPU_GROUP_LABEL: k.gpu_group(allocation.node, allocation.gpu_indices[0])}
        try:
            updated = self.api.merge_patch(core("pods", meta.namespace, meta.name), patch)
        except ApiError as error:
            if error.conflict or error.not_found:
                log.info("pod %s/%s changed since it was read; it is decided again next pass",
                         meta.namespace, meta.name)
                return False
            raise
        pod["metadata"] = updated.get("metadata", pod["metadata"])
        record = allocations.allocation_object(pod, allocation, bound_at)
        if not self.api.create_if_absent(allocations.path(meta.namespace), record):
            # Left by an earlier pod of this name (a new one does not mark a claim we missed: the
            # pod patch above would have failed). Gone next pass; the pod is decided again then.
            self.api.delete(allocations.path(meta.namespace, meta.name))
            return False
        job = k.job_id(meta.namespace or "", meta.name)
        view.allocations[job] = allocation
        view.allocation_objects[job] = record
        if owner is not None and Meta(owner).annotation(k.ATTEMPTS_STARTED) != attempt:
            self._count_attempt(owner, attempt)
        return True

    def _count_attempt(self, owner: dict[str, Any], attempt: str) -> None:
        """The Job's count follows its pods' numbers. Written after the claim: were the controller
        to stop in between, the next pod would repeat a number, never leave one out."""
        values = {k.ATTEMPTS_STARTED: attempt}
        try:
            self.api.merge_patch(group("batch/v1", "jobs", Meta(owner).namespace, Meta(owner).name),
                                 {"metadata": {"annotations": values}})
        except ApiError as error:
            if not error.not_found:
                raise
            return
        set_annotations(owner, values)

    def resolve(self, view: ClusterView, pod: dict[str, Any], resolved: Allocation) -> None:
        """Record the device UUIDs a claim resolved to, on the Allocation object and its mirror."""
        meta = Meta(pod)
        self.api.merge_patch(allocations.path(meta.namespace, meta.name),
                             {"spec": {"allocation": allocations.allocation_body(resolved)}})
        view.allocations[k.job_id(meta.namespace or "", meta.name)] = resolved
        self.mirror(pod, resolved)

    def mirror(self, pod: dict[str, Any], allocation: Allocation) -> None:
        text = k.encode_allocation(allocation)
        if Meta(pod).annotation(k.ALLOCATION) != text:
            self.api.merge_patch(core("pods", Meta(pod).namespace, Meta(pod).name),
                                 {"metadata": {"annotations": {k.ALLOCATION: text}}})
            set_annotations(pod, {k.ALLOCATION: text})

    def sync_records(self, view: ClusterView) -> None:
        """Delete the Allocation objects no live pod stands behind (the garbage collector does it
        for deleted pods on a cluster; finished pods and earlier pods of a name are ours to clear),
        and put back a pod's mirror annotation that someone changed."""
        for obj in view.stale_allocations:
            self.api.delete(allocations.path(Meta(obj).namespace, Meta(obj).name))
        view.stale_allocations.clear()
        # A mirror found right is not read again until its pod or its allocation changes: at
        # thousands of pods, encoding every allocation each pass was most of a quiet pass's work.
        mirrored: dict[str, tuple[str, Allocation]] = {}
        for job, pod in view.pods.items():
            allocation = view.allocations.get(job)
            if allocation is None:
                continue
            version = Meta(pod).resource_version
            if version is None or self._mirrored.get(job) != (version, allocation):
                self.mirror(pod, allocation)
            if version is not None:
                mirrored[job] = (version, allocation)
        self._mirrored = mirrored

    def complete_bind(self, view: ClusterView, pod: dict[str, Any], allocation: Allocation) -> str | None:
        """Fill the ConfigMap and bind; the reason it must wait, when a device is not there yet."""
        uuids, waiting = self._device_uuids(view, allocation)
        if waiting:
            return waiting
        resolved = _with_uuids(allocation, uuids)
        meta = Meta(pod)
        if resolved != allocation:
            self.resolve(view, pod, resolved)
        node = view.nodes.get(allocation.node)
        by_plugin = plugin_delivers(pod, resolved)
        if by_plugin and node is not None and (not_ready := plugin_not_ready(
                node, resolved, view.actual.get(allocation.node, {}).get(allocation.gpu_indices[0], []))):
            return not_ready
        delivery = pod_delivery(grant(resolved, uuids, enforcement=pod_enforcement(resolved, node)),
                                node_delivery(node, self.delivery), plugin_delivers=by_plugin)
        env = delivery.env
        owner = view.owner_job(pod)
        owner_ref = _owner_ref(owner or pod)
        name = k.pod_configmap(meta.name, Meta(owner).name if owner else None)
        if not self.api.create_if_absent(core("configmaps", meta.namespace),
                                         device_configmap(name, meta.namespace, env, owner_ref)):
            # Left from the job's previous pod (a requeue): its keys are replaced, stale ones removed.
            path = core("configmaps", meta.namespace, name)
            existing = self.api.get(path)
            if not is_device_configmap_of(existing, owner_ref):
                return (f"ConfigMap {name} exists and is not the one runai-lite made for this job; "
                        "delete or rename it so that the device environment can be written")
            stale = existing.get("data") or {}
            self.api.merge_patch(path, {"data": {**{key: None for key in stale}, **env}})
        for claim in claims_to_bind(pod, allocation.node, view.volumes):
            # WaitForFirstConsumer: the provisioner makes the volume where the pod goes (kube-scheduler's
            # VolumeBinding does the same); the kubelet waits for it before starting the pod.
            self.api.merge_patch(core("persistentvolumeclaims", meta.namespace, Meta(claim).name),
                                 {"metadata": {"annotations": {SELECTED_NODE: allocation.node}}})
        self._annotate_devices(pod, delivery.annotations)
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta.name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": allocation.node}}
        try:
            self.api.create(core("pods", meta.namespace, meta.name, "binding"), binding)
        except ApiError as error:
            if error.conflict or error.not_found:  # bound already (by us before a restart), or gone
                return None
            raise
        pod["spec"] = {**pod["spec"], "nodeName": allocation.node}  # (a copy: the pod may be the cache's)
        self.status.record(view, pod, "Bound", f"bound to {resolved.describe()}")
        return None

    def _annotate_devices(self, pod: dict[str, Any], annotations: dict[str, str]) -> None:
        """Set (or clear) the pod's CDI annotation before it is bound: the kubelet reads the pod once."""
        wanted = {CDI_ANNOTATION: annotations.get(CDI_ANNOTATION)}
        if Meta(pod).annotation(CDI_ANNOTATION) == wanted[CDI_ANNOTATION]:
            return
        meta = Meta(pod)
        pod["metadata"] = self.api.merge_patch(core("pods", meta.namespace, meta.name),
                                               {"metadata": {"annotations": wanted}})["metadata"]

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


TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"  # the Job controller counts the pods that carry it
ADMISSION_REASONS = frozenset({"UnexpectedAdmissionError", "NodeAffinity", "NodeSelectorMismatching", "Taint"})


class Eviction(Enum):
    GONE = "gone"  # deleted at once (or already): its room is free now
    STOPPING = "stopping"  # terminating: it holds its devices until its containers stop
    REFUSED = "refused"  # a disruption budget (or the API) said no: it keeps running


def _gpu_keys(allocation: Allocation) -> set[GpuKey]:
    return {(allocation.node, i) for i in allocation.gpu_indices}


def _holders(view: ClusterView) -> list[tuple[str, dict[str, Any]]]:
    """(job id, pod) of our pods that hold devices: those scheduled and those still stopping."""
    return [*view.pods.items(), *view.stopping.items()]


def _with_uuids(allocation: Allocation, uuids: list[str]) -> Allocation:
    if allocation.kind == "fraction" and uuids:
        return allocation.model_copy(update={"gpu_uuids": tuple(uuids)})
    if allocation.kind == "mig" and uuids:
        return allocation.model_copy(update={"mig_uuid": uuids[0]})
    return allocation


def _owner_ref(obj: dict[str, Any]) -> dict[str, str] | None:
    uid = Meta(obj).uid
    if not uid:
        return None
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": Meta(obj).name, "uid": uid}

