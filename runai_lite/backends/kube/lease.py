"""One active controller: a coordination.k8s.io/v1 Lease, as client-go's leader election keeps it.

A replica holds the Lease while it renews it within `leaseDurationSeconds`; another takes it over
only once it has expired. Every write carries the resourceVersion that was read, so two replicas
racing for an expired Lease cannot both win (one gets 409).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .rest import ApiError, group

if TYPE_CHECKING:
    from .client import KubeApi


def _micro(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class LeaderLease:
    def __init__(self, api: KubeApi, namespace: str, name: str, identity: str, duration_seconds: int = 15,
                 clock: Callable[[], float] = time.time):
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration_seconds
        self.clock = clock

    @property
    def renew_seconds(self) -> float:
        return self.duration / 3

    @property
    def path(self) -> str:
        return group("coordination.k8s.io/v1", "leases", self.namespace, self.name)

    def acquire_or_renew(self) -> bool:
        """True when this replica holds the Lease (taken, renewed, or taken over after expiry)."""
        now = self.clock()
        lease = self.api.get_or_none(self.path)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(now, now, 0)}
            return self.api.create_if_absent(group("coordination.k8s.io/v1", "leases", self.namespace), body)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        expired = _seconds(spec.get("renewTime")) + int(spec.get("leaseDurationSeconds") or self.duration) < now
        if holder not in (self.identity, None, "") and not expired:
            return False
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if holder == self.identity else 1)
        acquired = now if holder != self.identity else _seconds(spec.get("acquireTime")) or now
        return self._write(lease, self._spec(acquired, now, transitions))

    def release(self) -> None:
        """Give the Lease up (on shutdown), so that another replica need not wait for it to expire."""
        lease = self.api.get_or_none(self.path)
        if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
            self._write(lease, {**lease["spec"], "holderIdentity": None})

    def holder(self) -> str | None:
        lease = self.api.get_or_none(self.path)
        return (lease or {}).get("spec", {}).get("holderIdentity")

    def _spec(self, acquired: float, renewed: float, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                "acquireTime": _micro(acquired), "renewTime": _micro(renewed), "leaseTransitions": transitions}

    def _write(self, lease: dict[str, Any], spec: dict[str, Any]) -> bool:
        body = {**lease, "spec": spec}
        try:
            self.api.replace(self.path, body)
            return True
        except ApiError as error:
            if error.conflict:
                return False
            raise
