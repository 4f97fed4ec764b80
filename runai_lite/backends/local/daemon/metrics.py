"""The metrics unit: the daemon's metrics (fed by the scheduling and MIG units) written to the home's
`metrics.prom` whenever they change, where `runai-adm local metrics` and a node exporter's textfile
collector read them; and, when `local init --metrics-address` set one, served over HTTP with the
daemon's health (`/metrics`, `/healthz`, `/readyz`)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ....files import write_private
from ....metrics.endpoint import Endpoint, Heartbeat
from ....model import Snapshot
from .context import DaemonContext

log = logging.getLogger("runai_lite.daemon")

STALE_AFTER_SECONDS = 60.0  # a cycle waits at most a tick (0.5 s): a minute without one is a stuck daemon


class MetricsPublisher:
    def __init__(self, ctx: DaemonContext, snapshot: Callable[[], Snapshot]):
        self.ctx = ctx
        self.snapshot = snapshot
        self.heartbeat = Heartbeat(STALE_AFTER_SECONDS)
        self._written: bytes | None = None
        self.endpoint: Endpoint | None = None
        address = ctx.settings.metrics_address
        if address:
            host, port = address
            self.endpoint = Endpoint(ctx.metrics.exposition, self.heartbeat.alive, self.heartbeat.ready,
                                     host=host, port=port).start()
            log.info("serving metrics on http://%s:%d/metrics", host, self.endpoint.port)

    def __call__(self, now: float, changed: bool) -> None:
        """After each cycle; `changed`: the cycle changed something, so the cluster's state (GPUs,
        allocations, partitions) is read again. The daemon's own writes do not show in the store's
        data version, so the cycle says so rather than the store."""
        if changed or self.heartbeat.last is None:
            self.ctx.metrics.observe_state(self.snapshot())
        self.heartbeat.beat()
        text = self.ctx.metrics.exposition()
        if text != self._written:
            write_private(self.ctx.home.metrics, text.decode())
            self._written = text

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.stop()
