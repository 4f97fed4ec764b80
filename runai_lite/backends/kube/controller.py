"""The in-cluster controller: a custom scheduler for pods that name `runai-lite-scheduler`.

This module is the plan driver. Each pass is level-triggered: read the objects through the reader
(`cache.py`), build the snapshot (`cluster.py`), finish the binds that waited for a device, call
the same `scheduler.plan` as the embedded mode, and hand the plan's actions to the binder
(`binder.py`) in a fixed order: evictions, MIG layouts, reservations, claims and binds. What
users see of it (statuses, pending reasons, Events) is the status writer's (`status.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...model import Bind, CreateMig, DestroyMig, Plan, Preempt, Reserve, Snapshot
from . import conventions as k
from .binder import Binder, Eviction, describe
from .cache import ListingReader, ObjectReader
from .cluster import ClusterView, allocation_of, build_view
from .lease import LeaderLease
from .rest import core, group
from .status import StatusWriter, Waiting

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")

Planner = Callable[[Snapshot], Plan]


def default_planner() -> Planner:
    from ...scheduler import plan

    return plan


class Controller:
    def __init__(self, api: KubeApi, image: str, planner: Planner | None = None,
                 clock: Callable[[], float] = time.time, reader: ObjectReader | None = None):
        self.api = api
        self.planner = planner or default_planner()
        self.clock = clock
        self.reader = reader or ListingReader(api)
        self.status = StatusWriter(api, clock)
        self.binder = Binder(api, image, self.status)

    # -- one pass ------------------------------------------------------------------------------

    def reconcile_once(self) -> Plan:
        view = build_view(self.reader.read_objects())
        waiting: dict[str, Waiting] = {}
        for job_id, pod in view.pods.items():
            allocation = allocation_of(pod)
            if allocation is not None and not pod["spec"].get("nodeName"):
                reason = self.binder.complete_bind(view, pod, allocation)
                if reason:
                    waiting[job_id] = Waiting("WaitingForDevice", reason)
        plan = self.planner(view.snapshot)
        self._apply(view, plan, waiting)
        self.binder.sync_desired(view)
        self.binder.sync_reservations(view)
        self.status.report(view, plan, waiting)
        return plan

    def _apply(self, view: ClusterView, plan: Plan, waiting: dict[str, Waiting]) -> None:
        evicted = [self.binder.evict(view, action) for action in plan.of_type(Preempt)]
        if Eviction.REFUSED in evicted:
            # The rest of the plan counted on room a victim still holds (a disruption budget
            # refused, say): nothing more this pass; the next pass plans from what is there.
            return
        if Eviction.STOPPING in evicted:
            # The victims hold their devices until they are gone: the preemptors are nominated,
            # and the next passes (which see the victims stopping) bind them once they are.
            self._nominate(view, plan, waiting)
            return
        for action in plan.actions:
            if isinstance(action, DestroyMig | CreateMig):
                self.binder.change_layout(view, action)
        # Layouts are written before any pod claims a partition in them (a restart in between
        # leaves an idle partition, never a claim on one the layout lacks).
        self.binder.sync_desired(view)
        for action in plan.of_type(Reserve):
            self.binder.reserve(view, action.node, action.gpu_index)
        for action in plan.of_type(Bind):
            pod = view.pods.get(action.job)
            if pod is None:
                continue
            if self.binder.claim(pod, action.allocation):
                self.status.record(view, pod, "Scheduled", f"allocated {describe(action.allocation)}: {action.reason}")
                reason = self.binder.complete_bind(view, pod, action.allocation)
                if reason:
                    waiting[action.job] = Waiting("WaitingForDevice", reason)

    def _nominate(self, view: ClusterView, plan: Plan, waiting: dict[str, Waiting]) -> None:
        for action in plan.of_type(Bind):
            pod = view.pods.get(action.job)
            if pod is None:
                continue
            node = action.allocation.node
            victims = [job for job, p in view.stopping.items() if p["spec"].get("nodeName") == node]
            victims = victims or list(view.stopping)
            message = (f"nominated for {describe(action.allocation)}: waiting for {len(victims)} "
                       f"victim{'s' if len(victims) > 1 else ''} to stop ({', '.join(sorted(victims))})")
            waiting[action.job] = Waiting("Nominated", message)

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
