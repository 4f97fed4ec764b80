"""The binder: every write that gives a pod its place (KAI's binder and evictor).

Each step is idempotent, so a controller killed between any two leaves objects a fresh one
finishes from:

- an eviction goes through the Eviction API (the pod's Job requeues it: its podFailurePolicy
  ignores `DisruptionTarget`);
- a node's desired MIG layout goes into its `runai-lite/mig-desired` annotation, which the agent
  realises;
- a reservation pod has a deterministic name, so AlreadyExists means done;
- a claim writes the allocation onto the pod with a merge patch carrying the resourceVersion that
  was read, so a stale or second controller gets 409 and does nothing; from then on the pod holds
  its resources in every snapshot;
- once the device UUID is known (reservation pod or agent report) the pod's ConfigMap is filled and
  the pod bound through `pods/binding`, which a bound pod refuses: no pod is bound twice.
"""

from __future__ import annotations

import logging
from enum import Enum
from typing import TYPE_CHECKING, Any

from ...model import Allocation, CreateMig, DestroyMig, Preempt
from . import conventions as k
from .cluster import ClusterView, allocation_of, is_finished
from .enforcement import node_enforcement
from .manifests import device_configmap, device_env, is_device_configmap_of, reservation_pod
from .meta import Meta, set_annotations
from .predicates import SELECTED_NODE, claims_to_bind
from .rest import ApiError, core
from .status import StatusWriter

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")


class Binder:
    def __init__(self, api: KubeApi, image: str, status: StatusWriter):
        self.api = api
        self.image = image
        self.status = status

    # -- evictions -------------------------------------------------------------------------------

    def evict(self, view: ClusterView, action: Preempt) -> Eviction:
        """Evict a victim. Until it is gone it holds what it holds (`view.stopping`)."""
        pod = view.pods.get(action.job)
        if pod is None:
            return Eviction.GONE
        meta = Meta(pod)
        body = {"apiVersion": "policy/v1", "kind": "Eviction",
                "metadata": {"name": meta.name, "namespace": meta.namespace}}
        try:
            self.api.create(core("pods", meta.namespace, meta.name, "eviction"), body)
        except ApiError as error:
            if error.not_found:
                return Eviction.GONE
            self.status.record(view, pod, "PreemptionFailed", f"could not evict: {error}", warning=True)
            return Eviction.REFUSED
        self.status.record(view, pod, "Preempted", action.reason, warning=True)
        self.status.set_status(view, pod, "Preempted", action.reason)
        view.pods.pop(action.job, None)
        now = self.api.get_or_none(core("pods", meta.namespace, meta.name))
        if now is None or Meta(now).uid != meta.uid or is_finished(now):
            return Eviction.GONE
        view.stopping[action.job] = now
        return Eviction.STOPPING

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
        used = {(a.node, a.gpu_indices[0], a.mig_start) for pod in _holders(view)
                if (a := allocation_of(pod)) is not None and a.kind == "mig"}
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

    def reserve(self, view: ClusterView, node: str, gpu_index: int) -> None:
        if (node, gpu_index) in view.reservations:
            return
        body = reservation_pod(node, gpu_index, self.image)
        self.api.create_if_absent(core("pods", k.RESERVATION_NAMESPACE), body)
        view.reservations[(node, gpu_index)] = body

    def sync_reservations(self, view: ClusterView) -> None:
        """One reservation pod per GPU that fraction pods hold, none for others (KAI's sync rule).
        One the kubelet refused (no free device: another scheduler took the GPU first) is deleted
        and made again once it is gone, so that its fractions do not wait on it forever."""
        held = set()
        for pod in _holders(view):
            allocation = allocation_of(pod)
            if allocation is not None and allocation.kind == "fraction":
                held.update((allocation.node, i) for i in allocation.gpu_indices)
        for key, pod in list(view.reservations.items()):
            meta = Meta(pod)
            created_now = not meta.uid
            failed = (pod.get("status") or {}).get("phase") == "Failed"
            if not created_now and (key not in held or failed) and not meta.deleting:
                self.api.delete(core("pods", k.RESERVATION_NAMESPACE, meta.name))
                del view.reservations[key]
        for key in sorted(held - view.reservations.keys()):
            self.reserve(view, *key)

    # -- claims and bindings ---------------------------------------------------------------------

    def claim(self, pod: dict[str, Any], allocation: Allocation) -> bool:
        """Write the allocation onto the pod, on the condition that the pod is as we read it."""
        meta = Meta(pod)
        patch: dict[str, Any] = {"metadata": {
            "resourceVersion": meta.resource_version,
            "annotations": {k.ALLOCATION: k.encode_allocation(allocation),
                            k.BOUND_AT: k.now_rfc3339(self.status.now())},
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
        return True

    def complete_bind(self, view: ClusterView, pod: dict[str, Any], allocation: Allocation) -> str | None:
        """Fill the ConfigMap and bind; the reason it must wait, when a device is not there yet."""
        uuids, waiting = self._device_uuids(view, allocation)
        if waiting:
            return waiting
        resolved = _with_uuids(allocation, uuids)
        meta = Meta(pod)
        if resolved != allocation:
            self.api.merge_patch(core("pods", meta.namespace, meta.name),
                                 {"metadata": {"annotations": {k.ALLOCATION: k.encode_allocation(resolved)}}})
        node = view.nodes.get(allocation.node)
        env = device_env(resolved, uuids, node_enforcement(node) if node else None)
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
        binding = {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta.name},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": allocation.node}}
        try:
            self.api.create(core("pods", meta.namespace, meta.name, "binding"), binding)
        except ApiError as error:
            if error.conflict or error.not_found:  # bound already (by us before a restart), or gone
                return None
            raise
        pod["spec"]["nodeName"] = allocation.node
        self.status.record(view, pod, "Bound", f"bound to {describe(resolved)}")
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


class Eviction(Enum):
    GONE = "gone"  # deleted at once (or already): its room is free now
    STOPPING = "stopping"  # terminating: it holds its devices until its containers stop
    REFUSED = "refused"  # a disruption budget (or the API) said no: it keeps running


def _holders(view: ClusterView) -> list[dict[str, Any]]:
    """Our pods that hold devices: those scheduled and those still stopping."""
    return [*view.pods.values(), *view.stopping.values()]


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


def describe(allocation: Allocation) -> str:
    if not allocation.gpu_indices:
        return allocation.node
    where = f"{allocation.node} GPU {','.join(map(str, allocation.gpu_indices))}"
    if allocation.kind == "mig":
        return f"MIG {allocation.mig_profile} on {where}"
    if allocation.kind == "fraction":
        return f"{allocation.share_milli / 1000:g} of {where}"
    return where
