"""The kubelets of every node, and their device plugins, as explicit stand-ins: nothing happens until a
test (or the standalone server's loop) calls `Kubelet.sync()`.

A sync does what the node components would have done by then, in this order:

1. devices of pods that ended or are gone go back to their device plugin;
2. the pod garbage collector marks terminating pods that no node runs `Failed` (`DisruptionTarget`,
   reason `DeletionByPodGC`), so the Job controller can count them and let them go;
3. the taint manager evicts running pods from nodes with a `NoExecute` taint they do not tolerate (or
   whose `tolerationSeconds` ran out): `DisruptionTarget` (reason `DeletionByTaintManager`), then a delete;
4. terminating pods get SIGTERM: each container exits as the test said (`on_sigterm`; by default at
   once with 143), or is killed (137) when `deletionTimestamp` passes; the pod then turns `Failed`
   (`Succeeded` when every container exited 0) and the kubelet deletes it for good (grace 0; pods with
   finalizers, such as the Job controller's, stay until those are removed);
5. bound `Pending` pods are admitted as the kubelet admits them, oldest first (admission: `admit`),
   and started: `Running`, `Ready`, container statuses; a container whose command a test registered
   with `run_program` then runs that program (once per pod).

Admission, in the kubelet's order: the device manager allocates extended resources the node's
allocatable lists (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`, …) from its device plugin's free
devices, or the pod is `Failed` with reason `UnexpectedAdmissionError`; then CPU, memory, pods and
ephemeral storage against allocatable minus what the node's admitted, unfinished pods (terminating
ones included) request (`OutOfcpu`, `OutOfmemory`, `OutOfpods`, …); then `nodeSelector` and required
node affinity (`NodeAffinity`); then untolerated `NoExecute` taints (`TaintToleration`). An extended
resource the node does not list is ignored, as a kubelet does after `removeMissingExtendedResources`.

Then the container runtime creates the containers. A pod annotation `cdi.k8s.io/<key>` names CDI
devices (`vendor/class=name`, comma-separated) for the runtime to inject, as containerd does with
`pod_annotations = ["cdi.k8s.io/*"]` and CRI-O does: each must be in the node's CDI specs
(`cdi.set_devices(node, names)`, what `nvidia-ctk cdi generate` wrote there), else the pod stays
`Pending` with its containers waiting in `CreateContainerError` (`unresolvable CDI devices …`),
holding its admitted devices, and the next sync tries again.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import TYPE_CHECKING, Callable

from . import predicates, quantities
from .policies import UserInfo, acting_as
from .store import TERMINAL_POD_PHASES, Obj

if TYPE_CHECKING:
    from .emulator import KubeEmulator

log = logging.getLogger(__name__)
SIGTERM_EXIT, SIGKILL_EXIT = 143, 137
_DEVICE_NAMESPACE = uuid.UUID("0b6c8e8a-6c0e-4f0e-9a47-2f3a6f3d9e11")
Program = Callable[[Obj, dict[str, str]], None]
# the nodes' kubelets and the controller manager's pod GC and taint manager, as one identity for admission
USER = UserInfo("system:node:emulated", ("system:nodes", "system:authenticated"))


class Rejected(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass
class Refusal:
    node: str | None
    resource: str | None
    times: int
    message: str


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _key(pod: Obj) -> tuple[str, str]:
    return pod["metadata"]["namespace"], pod["metadata"]["name"]


def _ref(pod: Obj) -> str:
    return "/".join(_key(pod))


def _add(total: dict[str, Fraction], more: dict[str, Fraction]) -> None:
    for resource, value in more.items():
        total[resource] = total.get(resource, Fraction(0)) + value


def _set_condition(pod: Obj, condition: Obj) -> None:
    conditions = pod.setdefault("status", {}).setdefault("conditions", [])
    conditions[:] = [c for c in conditions if c.get("type") != condition["type"]] + [condition]


class DevicePlugin:
    """The device plugins of all nodes. A node's devices for a resource are the ones a test set
    (`set_devices`), else as many as its allocatable says, with stable generated IDs (`GPU-<uuid>` for
    `nvidia.com/gpu`, `MIG-<uuid>` for `nvidia.com/mig-*`). `refuse(...)` makes the next allocations
    fail as a plugin's failing Allocate call does."""

    def __init__(self) -> None:
        self.explicit: dict[tuple[str, str], list[str]] = {}
        self.assigned: dict[str, dict[str, list[str]]] = {}  # pod uid → resource → device IDs
        self.owner: dict[str, tuple[str, str]] = {}  # pod uid → (node, pod ref)
        self.refusals: list[Refusal] = []

    def set_devices(self, node: str, resource: str, ids: list[str]) -> None:
        self.explicit[(node, resource)] = list(ids)

    def refuse(self, node: str | None = None, resource: str | None = None, times: int = 1,
               message: str = "rpc error: code = Unknown desc = device plugin refused the allocation") -> Refusal:
        refusal = Refusal(node, resource, times, message)
        self.refusals.append(refusal)
        return refusal

    def devices(self, node: str, resource: str, allocatable: Fraction) -> list[str]:
        if (node, resource) in self.explicit:
            return self.explicit[(node, resource)]
        prefix = "GPU-" if resource == "nvidia.com/gpu" else "MIG-" if resource.startswith("nvidia.com/mig-") else ""
        return [f"{prefix}{uuid.uuid5(_DEVICE_NAMESPACE, f'{node}/{resource}/{i}')}" for i in range(int(allocatable))]

    def in_use(self, node: str) -> dict[str, set[str]]:
        used: dict[str, set[str]] = {}
        for uid, by_resource in self.assigned.items():
            if self.owner[uid][0] == node:
                for resource, ids in by_resource.items():
                    used.setdefault(resource, set()).update(ids)
        return used

    def allocate(self, pod: Obj, node: Obj, requests: dict[str, Fraction]) -> dict[str, list[str]]:
        node_name = node["metadata"]["name"]
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        used = self.in_use(node_name)
        given: dict[str, list[str]] = {}
        for resource, amount in sorted(requests.items()):
            if not quantities.is_extended(resource) or resource not in allocatable or amount == 0:
                continue
            for refusal in self.refusals:
                if refusal.times > 0 and refusal.node in (None, node_name) and refusal.resource in (None, resource):
                    refusal.times -= 1
                    raise Rejected("UnexpectedAdmissionError",
                                   f"Allocate failed due to {refusal.message}, which is unexpected")
            free = [d for d in self.devices(node_name, resource, quantities.parse(allocatable[resource]))
                    if d not in used.get(resource, set())]
            if len(free) < amount:
                raise Rejected("UnexpectedAdmissionError",
                               f"Allocate failed due to requested number of devices unavailable for {resource}. "
                               f"Requested: {int(amount)}, Available: {len(free)}, which is unexpected")
            given[resource] = free[:int(amount)]
        uid = pod["metadata"]["uid"]
        self.assigned[uid], self.owner[uid] = given, (node_name, _ref(pod))
        return given

    def release(self, uid: str) -> None:
        self.assigned.pop(uid, None)
        self.owner.pop(uid, None)

    def devices_of(self, uid: str) -> dict[str, list[str]]:
        return {r: list(ids) for r, ids in self.assigned.get(uid, {}).items()}


CDI_ANNOTATION_PREFIX = "cdi.k8s.io/"
_CDI_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[a-zA-Z0-9]([a-zA-Z0-9_.-]*[a-zA-Z0-9])?=[a-zA-Z0-9_.:-]+$")


class CdiRegistry:
    """The CDI specs of each node (the devices their container runtime can inject)."""

    def __init__(self) -> None:
        self.devices: dict[str, set[str]] = {}

    def set_devices(self, node: str, names: list[str]) -> None:
        self.devices[node] = set(names)

    def requested(self, pod: Obj) -> list[str]:
        annotations = pod["metadata"].get("annotations") or {}
        return [name.strip() for key, value in sorted(annotations.items()) if key.startswith(CDI_ANNOTATION_PREFIX)
                for name in str(value).split(",") if name.strip()]

    def unresolvable(self, node: str, pod: Obj) -> str | None:
        """The runtime's error for a pod whose CDI devices it cannot inject, or None."""
        names = self.requested(pod)
        invalid = [n for n in names if not _CDI_NAME.match(n)]
        if invalid:
            return f"failed to parse CDI device names {invalid}: not of the form vendor/class=name"
        missing = [n for n in names if n not in self.devices.get(node, set())]
        if missing:
            return f"failed to inject CDI devices: unresolvable CDI devices {', '.join(missing)}"
        return None


class Kubelet:
    """Moves bound pods through their life as the kubelet on their node would (see the module doc).

    `admission=False` gives the forgiving kubelet of old: every bound pod starts, nothing is counted."""

    def __init__(self, emulator: "KubeEmulator", admission: bool = True):
        self.emulator = emulator
        self.admission = admission
        self.device_plugin = DevicePlugin()
        self.cdi = CdiRegistry()
        self.injected: dict[str, list[str]] = {}  # pod uid -> CDI devices its containers were given
        self.programs: dict[tuple[str, ...], Program] = {}
        self.program_errors: list[str] = []
        self._sigterm: dict[tuple[str, str], int | None] = {}
        self._admitted: set[str] = set()  # uids
        self._ran: set[str] = set()  # uids whose program ran

    # ---- test hooks ----------------------------------------------------------------------------

    def run_program(self, command: tuple[str, ...] | list[str], program: Program) -> None:
        """Run `program(pod, env)` when a container whose command starts with `command` starts; env is
        the container's literal and downward-API variables plus what the device plugins set
        (`NVIDIA_VISIBLE_DEVICES`)."""
        self.programs[tuple(command)] = program

    def on_sigterm(self, namespace: str, name: str, exit_code: int | None) -> None:
        """How the pod's containers answer SIGTERM: exit with `exit_code` at once, or (None) ignore it
        until the grace period ends and they are killed (137)."""
        self._sigterm[(namespace, name)] = exit_code

    def devices_of(self, namespace: str, name: str) -> dict[str, list[str]]:
        """The device IDs the device plugins gave a pod (what the podresources API would list)."""
        pod = self._pod(namespace, name)
        return self.device_plugin.devices_of(pod["metadata"]["uid"])

    # ---- direct transitions --------------------------------------------------------------------

    def _pod(self, namespace: str, name: str) -> Obj:
        pod = self.emulator.get("pods", name, namespace)
        if pod is None:
            raise KeyError(f"no pod {namespace}/{name}")
        return pod

    def start(self, namespace: str, name: str, used: dict[str, Fraction] | None = None) -> Obj:
        """Admit the bound pod on its node and start it (Running, Ready), or fail it as the kubelet
        rejects it; returns the pod. `used`: as for `admit`."""
        pod = self._pod(namespace, name)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise ValueError(f"pod {namespace}/{name} is not bound to a node; a kubelet cannot run it")
        node = self.emulator.get("nodes", node_name)
        uid = pod["metadata"]["uid"]
        if self.admission and node is not None and uid not in self._admitted:
            try:
                self.admit(pod, node, used)
            except Rejected as rejected:
                return self._reject(pod, rejected)
        self._admitted.add(uid)
        problem = self.cdi.unresolvable(node_name, pod)
        if problem is not None:
            return self._wait_in_create(pod, problem)
        self.injected[uid] = self.cdi.requested(pod)
        started = self._run(pod)
        self._start_program(started)
        return started

    def _wait_in_create(self, pod: Obj, message: str) -> Obj:
        def waiting(p: Obj) -> None:
            p["status"]["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                 "started": False, "state": {"waiting": {"reason": "CreateContainerError", "message": message}}}
                for c in (p.get("spec") or {}).get("containers") or []]
        return self.emulator.mutate("pods", pod["metadata"]["name"], waiting, pod["metadata"]["namespace"])

    def cdi_devices_of(self, namespace: str, name: str) -> list[str]:
        """The CDI devices the container runtime injected into a pod's containers."""
        return list(self.injected.get(self._pod(namespace, name)["metadata"]["uid"], []))

    def _reject(self, pod: Obj, rejected: Rejected) -> Obj:
        def fail(p: Obj) -> None:
            p["status"].update(phase="Failed", reason=rejected.reason, message=f"Pod was rejected: {rejected.message}",
                               startTime=self.emulator.store.now())
        return self.emulator.mutate("pods", pod["metadata"]["name"], fail, pod["metadata"]["namespace"])

    def _run(self, pod: Obj) -> Obj:
        now = self.emulator.store.now()

        def run(p: Obj) -> None:
            status = p.setdefault("status", {})
            status.update(phase="Running", startTime=status.get("startTime", now), hostIP="10.0.0.1",
                          podIP=status.get("podIP", "10.244.0.10"))
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            for kind in ("Initialized", "ContainersReady", "Ready"):
                conditions[kind] = {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            status["conditions"] = list(conditions.values())
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
                 "started": True, "state": {"running": {"startedAt": now}}}
                for c in (p.get("spec") or {}).get("containers") or []
            ]

        return self.emulator.mutate("pods", pod["metadata"]["name"], run, pod["metadata"]["namespace"])

    def finish(self, namespace: str, name: str, exit_code: int = 0, reason: str | None = None) -> Obj:
        """Running → Succeeded (exit code 0) or Failed; its devices go back to the device plugin."""
        now = self.emulator.store.now()
        phase = "Succeeded" if exit_code == 0 else "Failed"
        reason = reason or ("Completed" if exit_code == 0 else "Error")

        def end(p: Obj) -> None:
            status = p.setdefault("status", {})
            status["phase"] = phase
            status["conditions"] = [
                {**c, "status": "False", "lastTransitionTime": now} if c.get("type") in ("Ready", "ContainersReady")
                else c for c in status.get("conditions") or []
            ]
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                 "started": False,
                 "state": {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": now}}}
                for c in (p.get("spec") or {}).get("containers") or []
            ]

        pod = self.emulator.mutate("pods", name, end, namespace)
        self.device_plugin.release(pod["metadata"]["uid"])
        return pod

    # ---- admission -----------------------------------------------------------------------------

    def admit(self, pod: Obj, node: Obj, used: dict[str, Fraction] | None = None) -> None:
        """Raise Rejected as the kubelet on `node` would reject `pod` (see the module doc); on success the
        pod holds its devices. `used`: what the node's other admitted pods request (computed if None)."""
        spec = pod.get("spec") or {}
        requests = quantities.pod_requests(spec)
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        if used is None:
            used = self.requested_on(node["metadata"]["name"], exclude=pod["metadata"]["uid"])
        # the device manager's admit handler runs before the predicates
        self.device_plugin.allocate(pod, node, requests)
        try:
            self._check_fit(requests, allocatable, used)
            if not predicates.node_affinity_matches(spec, node):
                raise Rejected("NodeAffinity", "Predicate NodeAffinity failed: node(s) didn't match Pod's node "
                                               "affinity/selector")
            taint = predicates.untolerated_taint(spec, node, ("NoExecute",))
            if taint is not None:
                raise Rejected("TaintToleration", "Predicate TaintToleration failed: node(s) had untolerated taint "
                                                  f"{{{taint.get('key')}: {taint.get('value', '')}}}")
        except Rejected:
            self.device_plugin.release(pod["metadata"]["uid"])
            raise

    def requested_on(self, node: str, exclude: str | None = None, pods: list[Obj] | None = None
                     ) -> dict[str, Fraction]:
        """What the pods that count against `node` request, summed."""
        used: dict[str, Fraction] = {}
        for other in self.emulator.objects("pods") if pods is None else pods:
            if self._holds(other, node) and other["metadata"]["uid"] != exclude:
                _add(used, quantities.pod_requests(other.get("spec") or {}))
        return used

    def _holds(self, pod: Obj, node: str) -> bool:
        """Whether a pod counts against its node: admitted (or running) and not finished, terminating or not."""
        return ((pod.get("spec") or {}).get("nodeName") == node
                and (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES
                and ((pod.get("status") or {}).get("phase") == "Running" or pod["metadata"]["uid"] in self._admitted))

    @staticmethod
    def _check_fit(requests: dict[str, Fraction], allocatable: dict[str, str], used: dict[str, Fraction]) -> None:
        for resource in ("cpu", "memory", "pods", "ephemeral-storage"):
            wanted = requests.get(resource, Fraction(0))
            if resource not in allocatable or (wanted == 0 and resource != "pods"):
                continue
            have, taken = quantities.parse(allocatable[resource]), used.get(resource, Fraction(0))
            if taken + wanted > have:
                raise Rejected(f"OutOf{resource}", f"Node didn't have enough resource: {resource}, requested: "
                               f"{quantities.scaled(resource, wanted)}, used: {quantities.scaled(resource, taken)}, "
                               f"capacity: {quantities.scaled(resource, have)}")

    # ---- programs ------------------------------------------------------------------------------

    def _env(self, pod: Obj, container: Obj) -> dict[str, str]:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        fields = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
                  "metadata.uid": meta["uid"], "spec.nodeName": spec.get("nodeName", ""),
                  "spec.serviceAccountName": spec.get("serviceAccountName", "default")}
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            if "value" in var:
                env[var["name"]] = str(var["value"])
            elif ((var.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") in fields:
                env[var["name"]] = fields[var["valueFrom"]["fieldRef"]["fieldPath"]]
        devices = self.device_plugin.devices_of(meta["uid"])
        nvidia = [d for r, ids in sorted(devices.items()) if r.startswith("nvidia.com/") for d in ids]
        if nvidia:  # what the NVIDIA device plugin's Allocate answer sets
            env["NVIDIA_VISIBLE_DEVICES"] = ",".join(nvidia)
        return env

    def _start_program(self, pod: Obj) -> None:
        if (pod.get("status") or {}).get("phase") != "Running" or pod["metadata"]["uid"] in self._ran:
            return
        for container in (pod.get("spec") or {}).get("containers") or []:
            command = tuple(container.get("command") or ()) + tuple(container.get("args") or ())
            for prefix, program in self.programs.items():
                if command[:len(prefix)] == prefix:
                    try:
                        program(pod, self._env(pod, container))
                    except Exception as error:  # the container crashed; a later sync starts it again
                        self.program_errors.append(f"{_ref(pod)}: {error}")
                        log.warning("program of %s failed: %s", _ref(pod), error)
                        return
        self._ran.add(pod["metadata"]["uid"])

    # ---- the sync ------------------------------------------------------------------------------

    def sync(self) -> list[str]:
        """One pass of every node's components (module doc); returns `namespace/name` of the pods it changed."""
        with acting_as(USER):
            return self._sync()

    def _sync(self) -> list[str]:
        changed: list[str] = []
        pods = self.emulator.objects("pods")
        live = {p["metadata"]["uid"]: p for p in pods}
        for uid in list(self.device_plugin.assigned):
            if uid not in live or (live[uid].get("status") or {}).get("phase") in TERMINAL_POD_PHASES:
                self.device_plugin.release(uid)
        self._admitted &= set(live)
        self._ran &= set(live)
        self.injected = {uid: names for uid, names in self.injected.items() if uid in live}
        nodes = {n["metadata"]["name"]: n for n in self.emulator.objects("nodes")}
        changed += self._collect_orphans(pods)
        changed += self._evict_for_taints(nodes)
        changed += self._terminate()
        pending = [p for p in self.emulator.objects("pods")
                   if (p.get("spec") or {}).get("nodeName") in nodes and (p.get("status") or {}).get("phase") == "Pending"
                   and not p["metadata"].get("deletionTimestamp")]
        pending.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        everything = self.emulator.objects("pods")
        used = {name: self.requested_on(name, pods=everything) for name in {p["spec"]["nodeName"] for p in pending}}
        for pod in pending:
            node = pod["spec"]["nodeName"]
            started = self.start(*_key(pod), used=used[node])
            if started["status"]["phase"] == "Running":
                _add(used[node], quantities.pod_requests(pod.get("spec") or {}))
            changed.append(_ref(pod))
        for pod in self.emulator.objects("pods"):  # programs that crashed start again
            if pod["metadata"]["uid"] in self._admitted and not pod["metadata"].get("deletionTimestamp"):
                self._start_program(pod)
        return changed

    def _collect_orphans(self, pods: list[Obj]) -> list[str]:
        # the pod GC: a terminating pod no kubelet runs (unbound, held by a finalizer) is marked Failed
        changed = []
        for pod in pods:
            if pod["metadata"].get("deletionTimestamp") and not (pod.get("spec") or {}).get("nodeName") \
                    and (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES:
                now = self.emulator.store.now()

                def fail(p: Obj, now: str = now) -> None:
                    _set_condition(p, {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                                       "message": "PodGC: node no longer exists", "lastTransitionTime": now})
                    p["status"]["phase"] = "Failed"

                self.emulator.mutate("pods", pod["metadata"]["name"], fail, pod["metadata"]["namespace"])
                changed.append(_ref(pod))
        return changed

    def _evict_for_taints(self, nodes: dict[str, Obj]) -> list[str]:
        changed = []
        now = self.emulator.store.clock()
        for pod in self.emulator.objects("pods"):
            spec, meta = pod.get("spec") or {}, pod["metadata"]
            node = nodes.get(spec.get("nodeName") or "")
            # a pod not yet admitted is the kubelet's to reject (TaintToleration) in this same sync
            if node is None or meta.get("deletionTimestamp") or (pod.get("status") or {}).get("phase") != "Running":
                continue
            due = False
            for taint in (node.get("spec") or {}).get("taints") or []:
                if taint.get("effect") != "NoExecute":
                    continue
                if not any(predicates.tolerates(t, taint) for t in spec.get("tolerations") or []):
                    due = True
                    break
                seconds = predicates.toleration_seconds(spec, taint)
                if seconds is not None:
                    added = _parse_time(taint["timeAdded"]) if taint.get("timeAdded") else now
                    due = due or now >= added + timedelta(seconds=seconds)
            if not due:
                continue
            stamp = self.emulator.store.now()
            self.emulator.mutate("pods", meta["name"], lambda p: _set_condition(p, {
                "type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint", "lastTransitionTime": stamp}),
                meta["namespace"])
            self.emulator.delete("pods", meta["name"], meta["namespace"])
            changed.append(_ref(pod))
        return changed

    def _terminate(self) -> list[str]:
        changed = []
        now = self.emulator.store.clock()
        for pod in self.emulator.objects("pods"):
            meta = pod["metadata"]
            if not meta.get("deletionTimestamp") or not (pod.get("spec") or {}).get("nodeName"):
                continue
            phase = (pod.get("status") or {}).get("phase")
            if phase not in TERMINAL_POD_PHASES:
                exit_code = self._sigterm.get(_key(pod), SIGTERM_EXIT)
                if exit_code is None:
                    if now < _parse_time(meta["deletionTimestamp"]):
                        continue  # still in its grace period
                    exit_code = SIGKILL_EXIT
                self.finish(meta["namespace"], meta["name"], exit_code)
            elif meta.get("finalizers"):
                continue  # already terminal; the finalizer's owner lets it go
            self.emulator.delete("pods", meta["name"], meta["namespace"], gracePeriodSeconds=0)
            changed.append(_ref(pod))
        return changed

    def finish_terminating(self) -> list[str]:
        """Every terminating pod's containers stop now (at once, with their SIGTERM exit code), whatever
        their grace period; the pods are deleted for good unless finalizers hold them."""
        for pod in self.emulator.objects("pods"):
            if pod["metadata"].get("deletionTimestamp") and self._sigterm.get(_key(pod), 0) is None:
                self._sigterm[_key(pod)] = SIGKILL_EXIT
        return self._terminate()
