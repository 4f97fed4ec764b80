"""What every unit of the daemon is made from: the store, the GPU driver, the home, the settings,
the process tracker, and what was decided at start (node name, enforcement mechanism)."""

from __future__ import annotations

from dataclasses import dataclass

from ....enforcement import Mechanism
from ....gpu.driver import GpuDriver
from ..paths import Home
from ..store import Store
from .settings import DaemonSettings
from .tracker import ProcessTracker


@dataclass
class DaemonContext:
    store: Store
    driver: GpuDriver
    home: Home
    settings: DaemonSettings
    tracker: ProcessTracker
    node: str
    mechanism: Mechanism
    hami_core_path: str
