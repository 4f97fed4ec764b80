"""The daemon's timing and behaviour settings, read once at start from the store's config (written
by `runai-adm local init` / `runai-adm config`) and the environment (tests' invariant checks)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..checks import CHECK_ENV


@dataclass(frozen=True)
class DaemonSettings:
    tick_seconds: float = 0.5  # the longest wait between cycles when no command wakes the daemon
    replan_seconds: float = 5.0  # plan even when nothing seems to have changed, now and then
    drift_seconds: float = 10.0  # compare the GPUs with the store even when no partition is changing
    launch_grace_seconds: float = 5.0  # an attempt this young without a shim may still be starting
    grace_seconds: float = 10.0  # SIGTERM → SIGKILL
    check_invariants: bool = False  # run the consistency check after every cycle (tests, harnesses)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], environ: Mapping[str, str] = os.environ) -> DaemonSettings:
        return cls(grace_seconds=float(config.get("grace_seconds", cls.grace_seconds)),
                   check_invariants=environ.get(CHECK_ENV) == "1")
