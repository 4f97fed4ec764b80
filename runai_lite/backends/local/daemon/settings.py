"""The daemon's timing and behaviour settings, read once at start from the store's config (written
by `runai-adm local init` and the like; each key below is optional) and the environment (tests'
invariant checks)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from ....metrics.endpoint import parse_address
from ..checks import CHECK_ENV
from ..joblog import LogCap

# config key -> field, for the settings an administrator may set in the store's config
CONFIG_KEYS = {
    "grace_seconds": "grace_seconds",
    "log_max_bytes": "log_max_bytes",
    "log_head_bytes": "log_head_bytes",
    "log_retention_seconds": "log_retention_seconds",
    "consistency_seconds": "consistency_seconds",
    "retry_backoff_seconds": "retry_backoff_seconds",
    "retry_backoff_max_seconds": "retry_backoff_max_seconds",
}


@dataclass(frozen=True)
class DaemonSettings:
    tick_seconds: float = 0.5  # the longest wait between cycles when no command wakes the daemon
    replan_seconds: float = 5.0  # plan even when nothing seems to have changed, now and then
    drift_seconds: float = 10.0  # compare the GPUs with the store even when no partition is changing
    launch_grace_seconds: float = 5.0  # an attempt this young without a shim may still be starting
    grace_seconds: float = 10.0  # SIGTERM → SIGKILL
    log_max_bytes: int = LogCap.max_bytes  # a job log above this is trimmed (head, marker, recent output)
    log_head_bytes: int = LogCap.head_bytes
    log_check_seconds: float = 2.0  # how often running jobs' logs are held to their cap
    log_retention_seconds: float = 3600.0  # a deleted job's record and log are removed this long after
    consistency_seconds: float = 30.0  # how often the daemon audits itself (and acts) outside tests
    check_invariants: bool = False  # audit after every cycle and report every finding (tests, harnesses)
    metrics_address: tuple[str, int] | None = None  # serve /metrics, /healthz, /readyz here (local init --metrics-address)
    # A failed job's retries wait as a Kubernetes Job's pod re-creations do: 10 s, doubling, at most 6 min.
    retry_backoff_seconds: float = 10.0
    retry_backoff_max_seconds: float = 360.0

    def retry_delay(self, failures: int) -> float:
        """How long the retry after the job's `failures`-th failure waits."""
        return min(self.retry_backoff_seconds * 2 ** max(failures - 1, 0), self.retry_backoff_max_seconds)

    @property
    def log_cap(self) -> LogCap:
        return LogCap(max_bytes=self.log_max_bytes, head_bytes=self.log_head_bytes)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> DaemonSettings:
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, name in CONFIG_KEYS.items():
            if config.get(key) is not None:
                values[name] = int(config[key]) if types[name] in ("int", int) else float(config[key])
        if config.get("metrics_address"):
            values["metrics_address"] = parse_address(config["metrics_address"])
        settings = cls(**values, check_invariants=environ.get(CHECK_ENV) == "1")
        settings.log_cap  # noqa: B018 - a head that does not fit the cap is refused at start
        return settings
