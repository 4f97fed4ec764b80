"""The in-cluster controller: a custom scheduler for pods that name `runai-lite-scheduler`.

This module is the plan driver. Each pass is level-triggered: read the objects through the reader
(`cache.py`), build the snapshot (`cluster.py`), finish the binds that waited for a device, call
the same `scheduler.plan` as the embedded mode, and carry the plan out through the scheduler's
`apply` with this pass's `PlanApplier` (`PassApplier`), which hands each action to the binder
(`binder.py`): evictions, MIG layouts, reservations, claims and binds, in the scheduler's phase
order. A victim still stopping blocks the rest of the plan: its preemptors are nominated and bound
in a later pass, once it is gone. What users see of it (statuses, pending reasons, Events) is the
status writer's (`status.py`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...devices import DeliveryMode
from ...errors import OperationalError
from ...metrics import Metrics
from ...model import Bind, CreateMig, DestroyMig, Plan, Preempt, Reserve, Snapshot
from ...scheduler.applier import Applied, Outcome, Phase, apply
from ..heap import HeapFreezer
from . import conventions as k
from .binder import Binder, Eviction
from .cache import ListingReader, ObjectReader, WatchCache
from .cluster import ClusterObjects, ClusterView, ViewBuilder
from .lease import FencedApi, LeaderLease, LostLeadership
from .reservations import withhold
from .status import StatusWriter, Waiting

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")

Planner = Callable[[Snapshot], Plan]


def default_planner() -> Planner:
    """`scheduler.plan`, keeping its working state from one pass to the next (built again only
    where the cluster or the last plan changed it)."""
    from ...scheduler.carried import CarriedPlanner

    return CarriedPlanner()


class Controller:
    def __init__(self, api: KubeApi, image: str, planner: Planner | None = None,
                 clock: Callable[[], float] = time.time, reader: ObjectReader | None = None,
                 lease: LeaderLease | None = None, monotonic: Callable[[], float] = time.monotonic,
                 metrics: Metrics | None = None, delivery: DeliveryMode = DeliveryMode.ENV,
                 runtime_class: str | None = None, install_name: str = "runai-lite"):
        """With a `lease`, every write is fenced by it (`reconcile_once` raises `LostLeadership`
        as soon as this replica may no longer write); without one, passes write unconditionally
        (a single controller, or tests driving passes by hand). `metrics` is told what each pass
        read and planned. `install_name` is what the install's objects are named after (the Helm
        release's full name): its PriorityClasses and the reservation pods' ServiceAccount."""
        self.api = api
        self.metrics = metrics or Metrics()
        self.priority_classes = k.PriorityClassNames(prefix=f"{install_name}-")
        self.planner = planner or default_planner()
        self.clock = clock
        self.reader = reader or ListingReader(api)
        self.lease = lease
        self._batch_fenced = False
        self.writes = FencedApi(api, self._before_write)
        self.status = StatusWriter(self.writes, clock)
        self.binder = Binder(self.writes, image, self.status, monotonic, delivery, runtime_class, install_name)
        self.monotonic = monotonic
        self.views = ViewBuilder(self.priority_classes)  # derives again only the objects that changed since the last pass
        self._last_plan: Plan = Plan()
        self._last_read: tuple[object, float | None] = (None, None)  # the reader's version, the binder's next timeout
        # Set by the controller's process (`runai-lite controller`), never by a library caller: it
        # freezes the whole process's heap after passes (`backends/heap.py`).
        self.heap: HeapFreezer | None = None

    # -- one pass ------------------------------------------------------------------------------

    def reconcile_once(self) -> Plan:
        started = self.monotonic()
        objects = self.reader.read_objects()
        if self._quiet(objects):
            return self._last_plan
        view = self.views.build(objects)
        self.metrics.observe_state(view.snapshot)
        self._new_batch()
        self.binder.forgive_admission_failures(view, objects.pods)
        if self.binder.check_reservations(view):
            view = self.views.build(self.reader.read_objects())  # the claims rolled back are pending again
        view.snapshot = withhold(view.snapshot, self.binder.ledger.resting())
        waiting: dict[str, Waiting] = {}
        for job_id, pod in view.pods.items():
            allocation = view.allocations.get(job_id)
            if allocation is not None and not pod["spec"].get("nodeName"):
                reason = self.binder.complete_bind(view, pod, allocation)
                if reason:
                    waiting[job_id] = Waiting("WaitingForDevice", reason)
        plan = self.planner(view.snapshot)
        self._new_batch()  # planning takes time: the writes go out only if the Lease is still ours
        applied = self._apply(view, plan, waiting)
        self.binder.sync_desired(view)
        self.binder.sync_reservations(view)
        self.binder.sync_records(view)
        self.status.report(view, plan, waiting)
        self.metrics.observe_plan(view.snapshot, plan, self.monotonic() - started,
                                  {job: wait.event_reason for job, wait in waiting.items()}, applied.preempted)
        self._last_plan, self._last_read = plan, (objects.version, self.binder.ledger.next_deadline())
        if self.heap is not None:
            self.heap.after_pass()
        return plan

    def _quiet(self, objects: ClusterObjects) -> bool:
        """Nothing to do: the reader saw the same objects as for the last whole pass (whose writes,
        if any, would have changed them), and no timeout of the binder's fell due since. Such a
        pass makes no API request and plans nothing."""
        version, deadline = self._last_read
        return (objects.version is not None and objects.version == version
                and (deadline is None or self.monotonic() < deadline))

    def _apply(self, view: ClusterView, plan: Plan, waiting: dict[str, Waiting]) -> Applied:
        applier = PassApplier(self.binder, self.status, view, waiting)
        applied = apply(plan, applier)
        if applied.stopped_after is Phase.PREEMPT and not applied.counts[Outcome.REFUSED] and view.stopping:
            # The victims hold their devices until they are gone: the preemptors are nominated,
            # and the next passes (which see the victims stopping) bind them once they are.
            self._nominate(view, plan, waiting)
        return applied

    def _nominate(self, view: ClusterView, plan: Plan, waiting: dict[str, Waiting]) -> None:
        for action in plan.of_type(Bind):
            pod = view.pods.get(action.job)
            if pod is None:
                continue
            node = action.allocation.node
            victims = [job for job, p in view.stopping.items() if p["spec"].get("nodeName") == node]
            victims = victims or list(view.stopping)
            message = (f"nominated for {action.allocation.describe()}: waiting for {len(victims)} "
                       f"victim{'s' if len(victims) > 1 else ''} to stop ({', '.join(sorted(victims))})")
            waiting[action.job] = Waiting("Nominated", message)

    def _new_batch(self) -> None:
        self._batch_fenced = False

    def _before_write(self) -> None:
        """The first write of a batch renews the Lease conditionally (`fence`); the others check
        the renew deadline. A pass that writes nothing costs the Lease nothing."""
        if self.lease is None:
            return
        if self._batch_fenced:
            self.lease.check()
        else:
            self.lease.fence()
            self._batch_fenced = True

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event, identity: str, namespace: str = k.SYSTEM_NAMESPACE,
            resync_seconds: float = 5.0, beat: Callable[[], None] = lambda: None) -> None:
        """Reconcile while holding the Lease, on every watched change and every `resync_seconds`,
        reading from a watch-fed cache. The Lease is kept by a thread of its own (client-go's
        elector), so that a long pass does not let it lapse; a pass stops at its next write once
        leadership is lost. `beat()` after each turn of the loop (the liveness probe's heartbeat)."""
        self.lease = self.lease or LeaderLease(self.api, namespace, k.LEASE_NAME, identity, clock=self.clock)
        lease = self.lease
        wake = threading.Event()
        cache = WatchCache(self.api, on_change=wake.set)
        cache.start(stop)
        self.reader = cache
        self.writes.observer = cache
        elector = threading.Thread(target=_keep_lease, args=(lease, wake, stop), name="leader election", daemon=True)
        elector.start()
        while not stop.is_set():
            if lease.leading():
                try:
                    self.reconcile_once()
                except LostLeadership as lost:
                    log.warning("stopped a pass: %s", lost)
                except Exception:  # a pass that failed is retried from fresh objects on the next one
                    log.exception("reconcile pass failed")
            beat()
            wake.wait(timeout=resync_seconds if lease.leading() else lease.retry_seconds)
            wake.clear()
        elector.join()
        try:
            lease.release()
        except OperationalError as error:  # the API is gone: the Lease expires by itself
            log.warning("could not release the Lease: %s", error)


def _keep_lease(lease: LeaderLease, wake: threading.Event, stop: threading.Event) -> None:
    """Try to acquire or renew every `retry_seconds`; wake the loop when leadership starts."""
    while not stop.is_set():
        was_leading = lease.leading()
        try:
            lease.acquire_or_renew()
        except Exception as error:  # the API went away: leadership lapses at the renew deadline
            log.warning("cannot renew the Lease: %s", error)
        if lease.leading() and not was_leading:
            log.info("leading as %s (fencing token %s)", lease.identity, lease.transitions)
            wake.set()
        stop.wait(lease.retry_seconds)


class PassApplier:
    """One pass's `PlanApplier`: each action goes to the binder, in the scheduler's phase order."""

    def __init__(self, binder: Binder, status: StatusWriter, view: ClusterView, waiting: dict[str, Waiting]):
        self.binder = binder
        self.status = status
        self.view = view
        self.waiting = waiting

    def preempt(self, action: Preempt) -> Outcome:
        eviction = self.binder.evict(self.view, action)
        # Refused (a disruption budget, say) or still stopping, the victim holds its room, which
        # the rest of the plan counted on: nothing more this pass; the next plans from what is there.
        return {Eviction.GONE: Outcome.APPLIED, Eviction.STOPPING: Outcome.BLOCKED}.get(eviction, Outcome.REFUSED)

    def destroy_mig(self, action: DestroyMig) -> Outcome:
        self.binder.change_layout(self.view, action)
        return Outcome.APPLIED

    def create_mig(self, action: CreateMig) -> Outcome:
        self.binder.change_layout(self.view, action)
        return Outcome.APPLIED

    def reserve(self, action: Reserve) -> Outcome:
        self.binder.reserve(self.view, action.node, action.gpu_index)
        return Outcome.APPLIED

    def bind(self, action: Bind) -> Outcome:
        pod = self.view.pods.get(action.job)
        if pod is None or not self.binder.claim(self.view, pod, action.allocation):
            return Outcome.SKIPPED
        self.status.record(self.view, pod, "Scheduled", f"allocated {action.allocation.describe()}: {action.reason}")
        reason = self.binder.complete_bind(self.view, pod, action.allocation)
        if reason:
            self.waiting[action.job] = Waiting("WaitingForDevice", reason)
        return Outcome.APPLIED

    def phase_done(self, phase: Phase) -> None:
        if phase is Phase.CREATE_MIG:
            # Layouts are written before any pod claims a partition in them (a restart in between
            # leaves an idle partition, never a claim on one the layout lacks).
            self.binder.sync_desired(self.view)
