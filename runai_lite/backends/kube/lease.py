"""One active controller: a coordination.k8s.io/v1 Lease, with client-go's leader-election semantics.

- **Expiry is local.** A replica never compares the holder's `renewTime` with its own clock (the
  clocks of two machines differ). It remembers when *it* last saw the Lease record change; another
  replica's Lease counts as expired only once `leaseDurationSeconds` have passed on this replica's
  monotonic clock without a change.
- **The leader steps down before anyone may take over.** It counts as leading only while its last
  successful renewal is younger than `renew_deadline_seconds`, which is shorter than the lease
  duration; a renewal refused, or a Lease another replica now holds, ends leadership at once.
- **Writes are fenced.** `check()` raises `LostLeadership` when this replica is no longer sure to
  lead; the controller calls it before every write. `fence()` renews the Lease with the
  resourceVersion this replica last saw (a compare-and-swap), so a replica that was paused or cut
  off while another took over fails it and writes nothing; the controller calls it before each
  batch of writes. Between a `fence()` and the writes that follow, no other replica can take over
  for `duration_seconds`, and `check()` stops this one after `renew_deadline_seconds`.

`transitions` (the Lease's `leaseTransitions` when this replica took it) names this replica's term
in its log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .rest import ApiError, group

if TYPE_CHECKING:
    from .client import KubeApi


class LostLeadership(Exception):
    """This replica may no longer write: another holds the Lease, or renewing it failed too long."""


def _micro(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderLease:
    def __init__(self, api: KubeApi, namespace: str, name: str, identity: str, duration_seconds: int = 15,
                 renew_deadline_seconds: float = 10.0, retry_seconds: float = 2.0,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic):
        if not 0 < renew_deadline_seconds < duration_seconds:
            raise ValueError("the renew deadline must be shorter than the lease duration")
        self.api = api
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.duration = duration_seconds
        self.renew_deadline = renew_deadline_seconds
        self.retry_seconds = retry_seconds
        self.clock = clock  # wall clock: only for the timestamps people read on the Lease
        self.monotonic = monotonic
        self.transitions: int | None = None
        self._observed: tuple[Any, ...] | None = None
        self._observed_at = 0.0
        self._renewed_at: float | None = None
        self._lease: dict[str, Any] | None = None  # the Lease as this replica last read or wrote it
        # The elector thread renews while a pass fences: one at a time, so that neither makes the
        # other's conditional write fail.
        self._lock = threading.RLock()

    @property
    def path(self) -> str:
        return group("coordination.k8s.io/v1", "leases", self.namespace, self.name)

    # -- leading ---------------------------------------------------------------------------------

    def leading(self) -> bool:
        return self._renewed_at is not None and self.monotonic() - self._renewed_at < self.renew_deadline

    def check(self) -> None:
        """Raise `LostLeadership` unless this replica renewed the Lease within the renew deadline."""
        if not self.leading():
            self._renewed_at = None
            raise LostLeadership(f"{self.identity} no longer holds the Lease {self.namespace}/{self.name}")

    def fence(self) -> None:
        """Renew now, conditional on the Lease being as this replica last saw it; raise
        `LostLeadership` when it is not (another replica took over) or renewing fails."""
        with self._lock:
            self.check()
            if self._lease is None or not self._write(self._lease, self._spec_renewed()):
                self._renewed_at = None
                raise LostLeadership(f"the Lease {self.namespace}/{self.name} changed under {self.identity}")

    # -- acquiring and renewing --------------------------------------------------------------------

    def acquire_or_renew(self) -> bool:
        """One try of client-go's tryAcquireOrRenew; True when this replica leads afterwards."""
        with self._lock:
            return self._acquire_or_renew()

    def _acquire_or_renew(self) -> bool:
        now = self.monotonic()
        lease = self.api.get_or_none(self.path)
        if lease is None:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace},
                    "spec": self._spec(self.clock(), 0)}
            try:
                created = self.api.create(group("coordination.k8s.io/v1", "leases", self.namespace), body)
            except ApiError as error:
                if error.conflict:
                    return self.leading()
                raise
            self._won(created, now)
            return True
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                  spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        if record != self._observed:
            self._observed, self._observed_at = record, now
        holder = spec.get("holderIdentity")
        if holder and holder != self.identity:
            self._renewed_at = None  # whatever this replica thought, another holds it now
            duration = int(spec.get("leaseDurationSeconds") or self.duration)
            if now - self._observed_at < duration:
                return False
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            new = {**spec, "renewTime": _micro(self.clock()), "leaseDurationSeconds": self.duration}
        else:
            new = self._spec(self.clock(), transitions + 1)
        if self._write(lease, new):
            self._won(self._lease or lease, now)
            return True
        return self.leading()  # refused (409): keep trying until the renew deadline runs out

    def release(self) -> None:
        """Give the Lease up (on shutdown), so that another replica need not wait for it to expire."""
        with self._lock:
            lease = self.api.get_or_none(self.path)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                self._write(lease, {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1})
            self._renewed_at = None

    def holder(self) -> str | None:
        lease = self.api.get_or_none(self.path)
        return (lease or {}).get("spec", {}).get("holderIdentity")

    def _won(self, lease: dict[str, Any], now: float) -> None:
        spec = lease.get("spec") or {}
        self._renewed_at = now
        self.transitions = int(spec.get("leaseTransitions") or 0)
        self._observed = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("acquireTime"),
                          spec.get("leaseTransitions"), spec.get("leaseDurationSeconds"))
        self._observed_at = now
        self._lease = lease

    def _spec(self, acquired: float, transitions: int) -> dict[str, Any]:
        return {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration,
                "acquireTime": _micro(acquired), "renewTime": _micro(acquired), "leaseTransitions": transitions}

    def _spec_renewed(self) -> dict[str, Any]:
        assert self._lease is not None
        return {**self._lease.get("spec", {}), "renewTime": _micro(self.clock())}

    def _write(self, lease: dict[str, Any], spec: dict[str, Any]) -> bool:
        """Replace the Lease, conditional on the resourceVersion in `lease`; False on 409."""
        try:
            written = self.api.replace(self.path, {**lease, "spec": spec})
        except ApiError as error:
            if error.conflict:
                return False
            raise
        if spec.get("holderIdentity") == self.identity:
            self._lease = written
            self._renewed_at = self.monotonic()
        return True


class WriteObserver(Protocol):
    def before(self, path: str) -> None: ...

    def written(self, verb: str, path: str, result: Any) -> None: ...


class FencedApi:
    """The API as a leader writes to it: every write first runs `check` (which raises
    `LostLeadership` when this replica may no longer write) and is reported to the `observer`
    (the watch cache, which expects to see it); reads pass through."""

    def __init__(self, api: KubeApi, check: Callable[[], None], observer: WriteObserver | None = None):
        self._api = api
        self._check = check
        self.observer = observer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def _write(self, verb: str, path: str, call: Callable[[], Any]) -> Any:
        self._check()
        if self.observer is not None:
            self.observer.before(path)
        result = call()
        if self.observer is not None:
            self.observer.written(verb, path, result)
        return result

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("create", path, lambda: self._api.create(path, body))

    def create_if_absent(self, path: str, body: dict[str, Any]) -> bool:
        try:
            self.create(path, body)
            return True
        except ApiError as error:
            if error.conflict:
                return False
            raise

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("update", path, lambda: self._api.replace(path, body))

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._write("patch", path, lambda: self._api.merge_patch(path, body))

    def delete(self, path: str, body: dict[str, Any] | None = None) -> bool:
        return self._write("delete", path, lambda: self._api.delete(path, body))
