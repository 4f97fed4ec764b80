"""The lifecycle of reservation pods: when one has failed the fractions of its GPU, and how long that
GPU rests before it is tried again.

A reservation pod holds a shared GPU for its fractions (the device plugin gives it one GPU and it
reports that GPU's UUID). It fails them when the kubelet refuses it (no free device: another
scheduler took the GPU first), when it reports no GPU within `TIMEOUT_SECONDS`, or, made again
for fractions already running, when the device plugin gave it another GPU than theirs. The binder
then rolls back the claims still waiting on it, stops the fractions running on a GPU no longer
reserved for them (never shared silently with whoever has it now), deletes it, and leaves that GPU
out of the snapshot for a backoff that doubles with each failure (`BACKOFF_SECONDS` up to
`MAX_BACKOFF_SECONDS`).

Times are this replica's monotonic clock, kept in memory: a new replica starts a reservation's
timeout and a GPU's backoff afresh, which only ever makes it wait longer or retry once sooner.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ...model import Snapshot
from . import conventions as k
from .meta import Meta

TIMEOUT_SECONDS = 180.0
BACKOFF_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 300.0
EXPECTED_UUID = "runai-lite/expected-gpu-uuid"  # on a reservation pod made again for running fractions

GpuKey = tuple[str, int]  # (node, GPU index)


@dataclass
class Backoff:
    failures: int
    until: float


class ReservationLedger:
    def __init__(self, monotonic: Callable[[], float] = time.monotonic):
        self.monotonic = monotonic
        self._first_seen: dict[str, float] = {}
        self._backoff: dict[GpuKey, Backoff] = {}

    def failure(self, pod: dict[str, Any]) -> str | None:
        """How this reservation pod failed its GPU's fractions, or None while it has not."""
        meta = Meta(pod)
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            why = ": ".join(filter(None, (status.get("reason"), status.get("message"))))
            return f"was refused by the kubelet ({why or 'no reason given'})"
        reported, expected = meta.annotation(k.RESERVED_UUID), meta.annotation(EXPECTED_UUID)
        if reported and expected and reported != expected:
            return f"was given GPU {reported}, not {expected} that its running fractions use"
        if reported or not meta.uid:
            self._first_seen.pop(meta.uid or "", None)
            return None
        first = self._first_seen.setdefault(meta.uid, self.monotonic())
        if self.monotonic() - first >= TIMEOUT_SECONDS:
            return f"reported no GPU within {TIMEOUT_SECONDS:.0f} s"
        return None

    def failed(self, key: GpuKey) -> float:
        """Record a failure on the GPU; the seconds it rests before it is tried again."""
        failures = (self._backoff[key].failures if key in self._backoff else 0) + 1
        delay = min(BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)
        self._backoff[key] = Backoff(failures, self.monotonic() + delay)
        return delay

    def succeeded(self, key: GpuKey) -> None:
        self._backoff.pop(key, None)

    def resting(self) -> set[GpuKey]:
        now = self.monotonic()
        return {key for key, backoff in self._backoff.items() if backoff.until > now}

    def next_deadline(self) -> float | None:
        """The next moment a pass decides differently with no object changed: a reservation pod's
        timeout or a GPU's rest running out (None: no such moment)."""
        now = self.monotonic()
        moments = [first + TIMEOUT_SECONDS for first in self._first_seen.values()]
        moments += [backoff.until for backoff in self._backoff.values() if backoff.until > now]
        return min(moments, default=None)

    def forget_except(self, uids: Iterable[str]) -> None:
        """Drop the timeouts of reservation pods that are gone."""
        live = set(uids)
        self._first_seen = {uid: t for uid, t in self._first_seen.items() if uid in live}


def withhold(snapshot: Snapshot, gpus: set[GpuKey]) -> Snapshot:
    """The snapshot without the given GPUs, except those a job holds (they stay, to be accounted)."""
    if not gpus:
        return snapshot
    held = {(a.node, i) for job in snapshot.jobs if (a := job.allocation) is not None for i in a.gpu_indices}
    drop = gpus - held
    if not drop:
        return snapshot
    nodes = tuple(node.model_copy(update={"gpus": tuple(g for g in node.gpus if (node.name, g.index) not in drop)})
                  for node in snapshot.nodes)
    return snapshot.model_copy(update={"nodes": nodes})
