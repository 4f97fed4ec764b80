"""The pod subresources with behaviour of their own: binding, eviction and log.

- binding: sets spec.nodeName and the PodScheduled condition; a pod already bound (or being deleted)
  answers 409, which is the API server's guarantee against double binding.
- eviction: honours PodDisruptionBudgets that carry `status.disruptionsAllowed` (429 when it is 0),
  adds the `DisruptionTarget` condition (reason `EvictionByEvictionAPI`, as since Kubernetes 1.26) and
  then deletes the pod like DELETE does (at once, or marked terminating with graceful_pod_deletion).
- log: the text a test stored with set_pod_log / append_pod_log; a pod still Pending answers 400
  ("waiting to start") as a real kubelet does.
"""

from __future__ import annotations

from typing import Any

from . import errors, policies
from .errors import ApiError
from .store import TERMINAL_POD_PHASES, Obj, Store


def _set_condition(pod: Obj, condition: dict[str, Any]) -> None:
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != condition["type"]] + [condition]


def bind(store: Store, namespace: str, name: str, binding: Obj) -> Obj:
    target = (binding or {}).get("target") or {}
    if not target.get("name"):
        raise errors.invalid("Binding", name, ["target.name: Required value"])
    if target.get("kind", "Node") != "Node":
        raise errors.invalid("Binding", name, [f'target.kind: Invalid value: "{target["kind"]}": must be Node'])
    pods = store.resources.by_name("pods")
    with store.lock:
        pod = store.get(pods, namespace, name)
        meta = pod["metadata"]
        want_uid = ((binding.get("metadata") or {}).get("uid"))
        if want_uid and want_uid != meta["uid"]:
            raise errors.conflict("pods", name, f"Precondition failed: UID in precondition: {want_uid}, "
                                                f"UID in object meta: {meta['uid']}")
        if meta.get("deletionTimestamp"):
            raise errors.conflict("pods", name, f"pod {name} is being deleted, cannot be assigned to a host")
        if (pod.get("spec") or {}).get("nodeName"):
            raise errors.conflict("pods", name, f'pod {name} is already assigned to node "{pod["spec"]["nodeName"]}"')
        annotations = (binding.get("metadata") or {}).get("annotations") or {}
        store.policies.admit(policies.Request("CREATE", pods, "binding", namespace, name, binding, None))

        def assign(p: Obj) -> None:
            p["spec"]["nodeName"] = target["name"]
            if annotations:
                p["metadata"].setdefault("annotations", {}).update(annotations)
            _set_condition(p, {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                               "lastTransitionTime": store.now()})

        store.mutate(pods, namespace, name, assign)
    return errors.success_status(201)


def _blocking_budget(store: Store, pod: Obj) -> Obj | None:
    labels = pod["metadata"].get("labels") or {}
    for pdb in store.objects(store.resources.by_name("poddisruptionbudgets"), pod["metadata"]["namespace"]):
        match = ((pdb.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        allowed = (pdb.get("status") or {}).get("disruptionsAllowed")
        if match and all(labels.get(k) == v for k, v in match.items()) and allowed == 0:
            return pdb
    return None


def evict(store: Store, namespace: str, name: str, eviction: Obj) -> Obj:
    pods = store.resources.by_name("pods")
    with store.lock:
        pod = store.get(pods, namespace, name)
        store.policies.admit(policies.Request("CREATE", pods, "eviction", namespace, name, eviction or {}, None))
        terminal = (pod.get("status") or {}).get("phase") in TERMINAL_POD_PHASES
        if not pod["metadata"].get("deletionTimestamp") and not terminal:
            pdb = _blocking_budget(store, pod)
            if pdb is not None:
                raise ApiError(429, "Cannot evict pod as it would violate the pod's disruption budget.",
                               details={"causes": [{"reason": "DisruptionBudget", "message":
                                        f"The disruption budget {pdb['metadata']['name']} needs more healthy pods"}]})
            store.mutate(pods, namespace, name, lambda p: _set_condition(p, {
                "type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                "message": "Eviction API: evicting", "lastProbeTime": None, "lastTransitionTime": store.now()}))
        store.delete(pods, namespace, name, (eviction or {}).get("deleteOptions"))
    return errors.success_status(201)


def _container(pod: Obj, container: str | None) -> str:
    names = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
    pod_name = pod["metadata"]["name"]
    if container is None:
        if len(names) != 1:
            raise errors.bad_request(f"a container name must be specified for pod {pod_name}, choose one of: {names}")
        return names[0]
    if container not in names:
        raise errors.bad_request(f"container {container} is not valid for pod {pod_name}")
    return container


def tail(text: str, lines: int | None) -> str:
    """The last `lines` lines of a log (all of it for None), as tailLines does."""
    if lines is None:
        return text
    return "".join(text.splitlines(keepends=True)[-lines:]) if lines > 0 else ""


def read_log(store: Store, namespace: str, name: str, container: str | None) -> tuple[str, bool]:
    """The log text and whether the pod has finished (so a follow stream may end)."""
    with store.lock:
        pod = store.get(store.resources.by_name("pods"), namespace, name)
        name_ = _container(pod, container)
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Pending":
            raise errors.bad_request(f'container "{name_}" in pod "{name}" is waiting to start: ContainerCreating')
        return store.logs.get((namespace, name, name_), ""), phase in TERMINAL_POD_PHASES


def write_log(store: Store, namespace: str, name: str, text: str, container: str | None = None,
              append: bool = False) -> None:
    with store.lock:
        pod = store.get(store.resources.by_name("pods"), namespace, name)
        key = (namespace, name, _container(pod, container))
        store.logs[key] = (store.logs.get(key, "") if append else "") + text
