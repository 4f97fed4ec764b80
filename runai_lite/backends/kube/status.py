"""What users see of the controller's decisions: `runai-calculated-status`, the pending reason and
Events, written on a pod's batch Job (or on the pod itself when it has none).

A status is written only when it changed, and an Event only when the reason changed, so a pass
that decides nothing new writes nothing. Events are best effort: one that cannot be written never
stops a plan.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ...model import Plan
from . import conventions as k
from .cluster import ClusterView
from .manifests import event
from .meta import Meta, set_annotations
from .predicates import pending_reason
from .rest import ApiError, core, group

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")


class Waiting(NamedTuple):
    """Why a pod the plan placed is not bound yet: the Event's reason and the message."""

    event_reason: str
    message: str


class StatusWriter:
    def __init__(self, api: KubeApi, clock: Callable[[], float] = time.time):
        self.api = api
        self.clock = clock

    def report(self, view: ClusterView, plan: Plan, waiting: dict[str, Waiting]) -> None:
        """Every pod's status after a pass: invalid, waiting for a device, running, or why pending."""
        for pod, message in view.invalid:
            self.set_status(view, pod, "Pending", message, event_reason="InvalidRequest")
        for job_id, pod in view.pods.items():
            if job_id in waiting:
                self.set_status(view, pod, "Pending", waiting[job_id].message,
                                event_reason=waiting[job_id].event_reason)
            elif pod["spec"].get("nodeName") and job_id in view.allocations:
                self.set_status(view, pod, "Running", None)
            elif (reason := pending_reason(plan.pending_reason(job_id), view.filtered.get(job_id))) is not None:
                self.set_status(view, pod, "Pending", reason, event_reason="Unschedulable")

    def set_status(self, view: ClusterView, pod: dict[str, Any], status: str, reason: str | None,
                   event_reason: str | None = None) -> None:
        """Write `runai-calculated-status` and the pending reason on the pod's Job (or the pod),
        with an Event when the reason changed."""
        target = view.owner_job(pod) or pod
        meta = Meta(target)
        previous = meta.annotation(k.PENDING_REASON)
        if meta.annotation(k.STATUS) == status and previous == reason:
            return
        path = (group("batch/v1", "jobs", meta.namespace, meta.name) if target is not pod
                else core("pods", meta.namespace, meta.name))
        values = {k.STATUS: status, k.PENDING_REASON: reason}
        try:
            self.api.merge_patch(path, {"metadata": {"annotations": values}})
        except ApiError as error:
            if not error.not_found:
                raise
            return
        set_annotations(target, values)
        if event_reason and reason and previous != reason:
            self.record(view, pod, event_reason, reason, warning=event_reason == "InvalidRequest")

    def record(self, view: ClusterView, pod: dict[str, Any], reason: str, message: str,
               warning: bool = False) -> None:
        target = view.owner_job(pod) or pod
        body = event(target, reason, message, k.now_rfc3339(self.now()), warning)
        try:
            self.api.create(core("events", Meta(target).namespace), body)
        except ApiError as error:
            log.warning("could not record event %s on %s: %s", reason, Meta(target).name, error)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)
