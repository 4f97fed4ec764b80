"""The Kubernetes side of the node agent (`runai-lite agent`, a DaemonSet on dynamic-MIG nodes).

Each pass reads the node's desired MIG layout (annotation `runai-lite/mig-desired`, written by the
controller), calls `runai_lite.agent.reconcile` with the machine's GPU driver (NVML, or simulated)
- the same code the embedded daemon runs, which never destroys an instance a process still uses -
and writes back:

- `runai-lite/gpus`: the GPUs (index, UUID, model, memory, MIG capability and mode): the MIG-mode
  report `runai-adm set node-role --dynamic-mig-enabled` checks;
- `runai-lite/mig-actual`: the instances that exist (with their MIG UUIDs) and the errors of the
  pass, which the controller shows as the reason a job waits;
- the label `nvidia.com/mig.config.state` (`pending`, `success`, `failed`), as NVIDIA's MIG manager
  reports its work, once the controller has named a layout. The manager's input, the label
  `nvidia.com/mig.config`, is not obeyed (the layout is the scheduler's): a warning says so;
- `runai-lite/reported-by`: this node's name. The admission policy `runai-lite-node-reports` lets
  an agent write only the node its pod's token names, and this value only as that name, so the
  controller reads a node's reports only when they name the node itself.

After a pass that created or destroyed an instance it restarts the GPU Operator's pods on its node
that read the MIG layout only when they start (the device plugin, which then offers the new
`nvidia.com/mig-<profile>` devices, and GPU feature discovery), as NVIDIA's MIG manager does: it
deletes the pods with those labels in the operator's namespace on this node, and their DaemonSets
make them again. A restart that fails is tried again on the next pass.

Also the tiny program of the reservation pods (`runai-lite reservation`).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ...agent import ReconcileResult, reconcile
from ...gpu.driver import DriverError, GpuDriver
from ...gpu.simulated import SimulatedDriver
from ...metrics import Metrics
from . import conventions as k
from .cache import WATCH_SECONDS, Backoff
from .meta import Meta
from .rest import ApiError, core

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.agent")


def inventory_report(driver: GpuDriver) -> list[dict[str, Any]]:
    """The node's GPUs as the controller reads them."""
    return [{"index": g.index, "uuid": g.uuid, "name": g.name, "memory_mib": g.memory_mib, "mig_capable": g.mig_capable, "mig_enabled": g.mig_enabled,
             "simulated": g.simulated}
            for g in driver.gpus()]


def desired_for_agent(desired: dict[int, list[dict[str, Any]]]) -> dict[int, list[tuple[str, int, bool]]]:
    return {index: [(i["profile"], int(i["start"]), bool(i.get("required", True))) for i in items]
            for index, items in desired.items()}


def _switch_on_demand_mig_on(driver: GpuDriver) -> None:
    """The agent runs where the GPU operator put MIG mode on; a simulated GPU declared with MIG
    mode on demand stands for such a GPU, so the agent switches it on as the MIG manager would."""
    if isinstance(driver, SimulatedDriver):
        for gpu in driver.gpus():
            if driver.mig_mode_on_demand(gpu.index) and not gpu.mig_enabled:
                driver.set_mig_mode(gpu.index, True)


OPERATOR_NAMESPACE = "gpu-operator"
# The GPU Operator's labels on the pods that must start again after a MIG change.
REFRESHED_PODS = ("app=nvidia-device-plugin-daemonset", "app=gpu-feature-discovery")


def mig_config_state(result: ReconcileResult) -> str:
    """The MIG manager's `nvidia.com/mig.config.state` for a pass: `success` when the layout is as
    desired, `pending` while a partition in use (or a retryable failure) holds it back, `failed`
    when a failure will not go away by itself."""
    if any(not error.retryable for error in result.errors):
        return "failed"
    return "pending" if result.errors else "success"


class NodeAgent:
    def __init__(self, api: KubeApi, node: str, driver: GpuDriver, metrics: Metrics | None = None, *,
                 operator_namespace: str = OPERATOR_NAMESPACE, refreshed_pods: tuple[str, ...] = REFRESHED_PODS):
        """`operator_namespace` and `refreshed_pods` (label selectors): the pods restarted on this node
        after a MIG change; an empty `refreshed_pods` restarts none."""
        self.api = api
        self.node = node
        self.driver = driver
        self.metrics = metrics or Metrics()
        self.watched = WatchedNode(api, node)
        _switch_on_demand_mig_on(driver)
        self.operator_namespace = operator_namespace
        self.refreshed_pods = refreshed_pods
        self._refresh_due = False
        self._ignored_config: str | None = None

    def reconcile_once(self, node: dict[str, Any] | None = None) -> ReconcileResult:
        """One pass over `node` (the node object as last seen; read from the API when not given)."""
        if node is None:
            node = self.api.get(core("nodes", name=self.node))
        annotations = Meta(node).annotations
        self._warn_of_mig_config(Meta(node).label(k.MIG_CONFIG_LABEL))
        inventory = inventory_report(self.driver)
        mig_gpus = [g["index"] for g in inventory if g["mig_capable"] and g["mig_enabled"]]
        if k.MIG_DESIRED in annotations:
            desired, _ = k.decode_layout(annotations[k.MIG_DESIRED])
            wanted = desired_for_agent({i: items for i, items in desired.items() if i in mig_gpus})
            # GPUs the controller has not named yet are reported, not cleared.
            result = reconcile(self.driver, wanted)
            self.metrics.observe_mig(result)
        else:  # no desired layout yet: report what exists, change nothing
            result = ReconcileResult()
        actual: dict[int, list[dict[str, Any]]] = {}
        for index in mig_gpus:
            try:
                devices = self.driver.mig_instances(index)
            except DriverError as error:
                log.warning("cannot list the MIG instances of GPU %s: %s", index, error)
                continue
            actual[index] = [{"profile": d.profile, "start": d.start, "size": d.size, "uuid": d.uuid,
                              "gi_id": d.gi_id} for d in devices]
        errors = [f"GPU {g.gpu_index}: {e.message}" for g in result.gpus for e in g.errors if e.code != "in-use"]
        errors += [e.message for e in result.machine_errors]
        busy = [f"GPU {g.gpu_index}: {e.message}" for g in result.gpus for e in g.errors if e.code == "in-use"]
        report = {k.GPU_INVENTORY: json.dumps(inventory, sort_keys=True, separators=(",", ":")),
                  k.MIG_ACTUAL: k.encode_layout(actual, errors=errors, waiting=busy),
                  k.REPORTED_BY: self.node}
        state = mig_config_state(result) if k.MIG_DESIRED in annotations else None
        labels = {k.MIG_CONFIG_STATE_LABEL: state} if state and Meta(node).label(k.MIG_CONFIG_STATE_LABEL) != state else {}
        if labels or any(annotations.get(key) != value for key, value in report.items()):
            written = self.api.merge_patch(core("nodes", name=self.node),
                                           {"metadata": {"annotations": report, **({"labels": labels} if labels else {})}})
            self.watched.saw(written)
        if any(g.created or g.destroyed for g in result.gpus):
            self._refresh_due = True
        if self._refresh_due:
            self._refresh_due = not self.restart_gpu_operator_pods()
        return result

    def _warn_of_mig_config(self, config: str | None) -> None:
        """The MIG manager's `nvidia.com/mig.config` is not obeyed here: on a dynamic-MIG node the
        layout is the scheduler's (it follows the jobs placed there, partition by partition, and
        never destroys one in use), and applying a named config would fight it. Said once per
        value, so that whoever set it learns why nothing happened."""
        if config and config != self._ignored_config:
            log.warning("node %s: the label %s=%s is not applied: on a dynamic-MIG node runai-lite's scheduler "
                        "owns the MIG layout; remove the label, or remove the node's dynamic-MIG role to hand "
                        "the layout back to NVIDIA's MIG manager", self.node, k.MIG_CONFIG_LABEL, config)
        self._ignored_config = config

    def restart_gpu_operator_pods(self) -> bool:
        """Delete this node's device plugin and feature discovery pods (their DaemonSets make them
        again, and they read the new MIG layout when they start); True when none is left to delete."""
        done = True
        for selector in self.refreshed_pods:
            try:
                pods = self.api.list(core("pods", self.operator_namespace), label_selector=selector,
                                     field_selector=f"spec.nodeName={self.node}")
                for pod in pods:
                    if not Meta(pod).deleting:
                        self.api.delete(core("pods", self.operator_namespace, Meta(pod).name))
                        log.info("restarted %s/%s after a MIG change", self.operator_namespace, Meta(pod).name)
            except ApiError as error:
                log.warning("cannot restart the pods %s on %s after a MIG change: %s", selector, self.node, error)
                done = False
        return done

    def run(self, stop: threading.Event, interval_seconds: float = 2.0, beat: Callable[[], None] = lambda: None
            ) -> None:
        """Reconcile on every change of the node and every `interval_seconds` (the driver's side
        changes unannounced: a partition in use becomes free), from the node object its own
        watch keeps: a pass that finds nothing to change makes no API request."""
        wake = threading.Event()
        threading.Thread(target=self.watched.run, args=(wake, stop), daemon=True, name="watch node").start()
        while not stop.is_set():
            try:
                self.reconcile_once(self.watched.latest())
            except Exception:  # a failed pass is retried from the node's fresh state
                log.exception("agent pass failed")
            beat()
            wake.wait(timeout=interval_seconds)
            wake.clear()


class WatchedNode:
    """One node object, kept by a list-then-watch on `metadata.name` (RBAC allows the agent
    nothing wider), and by what the agent's own patches return; the newest resourceVersion wins."""

    def __init__(self, api: KubeApi, node: str):
        self.api = api
        self.node = node
        self._latest: dict[str, Any] | None = None
        self._lock = threading.Lock()

    def latest(self) -> dict[str, Any] | None:
        """The node as last seen; None before the first list (the pass then reads it)."""
        with self._lock:
            return self._latest

    def saw(self, node: dict[str, Any]) -> None:
        with self._lock:
            if self._latest is None or _newer(node, self._latest):
                self._latest = node

    def run(self, wake: threading.Event, stop: threading.Event) -> None:
        selector = f"metadata.name={self.node}"
        backoff = Backoff()
        while not stop.is_set():
            try:
                items, version = self.api.list_with_version(core("nodes"), field_selector=selector)
                for item in items:
                    self.saw(item)
                wake.set()
                while not stop.is_set():
                    for event in self.api.watch(core("nodes"), version, timeout_seconds=WATCH_SECONDS,
                                                field_selector=selector):
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise ApiError(int(obj.get("code") or 410), "Expired", str(obj.get("message")))
                        version = Meta(obj).resource_version or version
                        backoff.reset()
                        if kind in ("ADDED", "MODIFIED"):
                            self.saw(obj)
                            wake.set()
                    if stop.is_set():
                        return
            except Exception as error:  # a 410 lists again at once; anything else after a backoff
                log.debug("node watch ended: %s", error)
                if not (isinstance(error, ApiError) and error.status == 410):
                    stop.wait(backoff.next())


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    va, vb = Meta(a).resource_version or "", Meta(b).resource_version or ""
    return int(va) > int(vb) if va.isdigit() and vb.isdigit() else va != vb


def visible_gpu_uuids(visible_devices: str | None) -> list[str]:
    """The GPUs this container was given: `NVIDIA_VISIBLE_DEVICES` when it names them, else what
    NVML sees (under CDI the variable may be unset or `void`)."""
    named = [u.strip() for u in (visible_devices or "").split(",")
             if u.strip() and u.strip() not in ("all", "none", "void")]
    if named:
        return named
    from ...gpu.nvml import NvmlDriver

    driver = NvmlDriver()
    try:
        return [g.uuid for g in driver.gpus()]
    finally:
        driver.close()


def report_reserved_gpu(api: KubeApi, namespace: str, pod: str, uuids: list[str]) -> str:
    """What a reservation pod does once started: write the UUID of the one GPU the device plugin
    gave it into its own `run.ai/reserve_for_gpu_index` annotation."""
    if len(uuids) != 1:
        raise ValueError(f"a reservation pod must see exactly one GPU, not {len(uuids)} ({', '.join(uuids)})")
    try:
        api.merge_patch(core("pods", namespace, pod), {"metadata": {"annotations": {k.RESERVED_UUID: uuids[0]}}})
    except ApiError as error:
        raise RuntimeError(f"cannot annotate reservation pod {namespace}/{pod}: {error}") from None
    return uuids[0]
