"""The daemon's loop: open what the units share, then run them in their fixed order each cycle."""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections.abc import Callable

from ....enforcement import (
    DEFAULT_HAMI_CORE_PATH,
    EnforcementUnavailableError,
    Mechanism,
    choose_mechanism,
    probe_node,
)
from ....errors import RunaiLiteError
from ....gpu.drivers import open_driver
from ....gpu.simulated import SimulatedDriver
from ..gpu_ownership import GpuLocks
from ..paths import Home
from ..store import Store
from .audit import Auditor
from .context import DaemonContext
from .launch import Launcher
from .logs import LogKeeper
from .metrics import MetricsPublisher
from .mig import MigRealiser
from .publish import publish_gpus
from .schedule import Scheduler
from .settings import DaemonSettings
from .supervise import Supervisor
from .tracker import AttemptProcesses

log = logging.getLogger("runai_lite.daemon")


class Daemon:
    def __init__(self, home: Home, tracker: AttemptProcesses | None = None):
        store = Store(home.db)
        config = store.all_config()
        node: str = config.get("node") or socket.gethostname()
        # A simulated machine is declared by `local init`; later daemons open it as it is (MIG modes
        # and partitions persist, as on real GPUs) and declare it only if its state file is gone.
        simulate = config.get("simulate")
        driver = open_driver(home.root, None if simulate is None or SimulatedDriver.is_declared(home.root) else simulate)
        hami_core_path: str = config.get("hami_core_path") or DEFAULT_HAMI_CORE_PATH
        mechanism = _mechanism(config.get("enforcement", "auto"), hami_core_path)
        tracker = tracker or AttemptProcesses.open(home, config.get("process_tracking", "auto"))
        with store.write() as conn:
            store.set_config(conn, "node", node)
            store.set_config(conn, "enforcement_mechanism", mechanism.value)
            for key, value in tracker.describe().items():
                store.set_config(conn, key, value)
        self.ctx = DaemonContext(
            store=store, driver=driver, home=home, settings=DaemonSettings.from_config(config),
            tracker=tracker, node=node, mechanism=mechanism, hami_core_path=hami_core_path,
            gpu_locks=None if driver.simulated else GpuLocks(str(home.root)))
        self.supervise = Supervisor(self.ctx)
        self.schedule = Scheduler(self.ctx)
        self.realise_mig = MigRealiser(self.ctx)
        self.start_bound = Launcher(self.ctx)
        self.keep_logs = LogKeeper(self.ctx)
        self.audit = Auditor(self.ctx)
        self.publish_metrics = MetricsPublisher(self.ctx, self.schedule.snapshot)
        self.stopping = False
        self._seen_version: int | None = None
        self._last_plan = 0.0
        self._last_claim = 0.0
        publish_gpus(self.ctx)

    @property
    def node(self) -> str:
        return self.ctx.node

    def run(self, wake: Callable[[float], None], ready: Callable[[], None] = lambda: None) -> None:
        """Cycle until stopped, waiting with `wake(timeout)` between bursts; `ready()` after the
        first cycle, which catches up with the store (adopts or settles job processes, finishes
        recorded intents)."""
        first = True
        while not self.stopping:
            for _ in range(10):  # settle a burst of changes without waiting for a tick
                try:
                    busy = self.cycle(time.time())
                except RunaiLiteError as error:
                    log.error("cycle failed: %s", error)
                    busy = False
                except Exception:  # the daemon must outlive any one cycle's failure
                    log.error("cycle failed:\n%s", traceback.format_exc())
                    busy = False
                if first:
                    ready()
                    first = False
                if not busy or self.stopping:
                    break
            wake(self.ctx.settings.tick_seconds)

    def cycle(self, now: float) -> bool:
        """One pass; True when it changed something (another pass may then find more to do)."""
        self.ctx.tracker.reap()
        version = self.ctx.store.data_version()
        changed = version != self._seen_version
        self._seen_version = version
        changed |= self.supervise(now)
        changed |= self._reclaim_gpus(now)
        if changed or now - self._last_plan >= self.ctx.settings.replan_seconds or self.schedule.retry_due(now):
            changed |= self.schedule(now)
            self._last_plan = now
        changed |= self.supervise(now)  # stop what the plan preempted without waiting for a tick
        changed |= self.realise_mig(now)
        changed |= self.start_bound(now)
        changed |= self.keep_logs(now)
        changed |= self.audit(now)
        self.publish_metrics(now, changed)
        return changed

    def _reclaim_gpus(self, now: float) -> bool:
        """GPUs another daemon owned: take them once it has let go (looked at now and then)."""
        if not self.ctx.foreign_gpus or now - self._last_claim < self.ctx.settings.drift_seconds:
            return False
        self._last_claim = now
        before = dict(self.ctx.foreign_gpus)
        publish_gpus(self.ctx)
        return before != self.ctx.foreign_gpus

    def close(self) -> None:
        self.publish_metrics.close()
        self.ctx.tracker.close()
        if self.ctx.gpu_locks is not None:
            self.ctx.gpu_locks.release()
        self.ctx.driver.close()
        self.ctx.store.close()


def _mechanism(setting: str, hami_core_path: str) -> Mechanism:
    probe = probe_node(hami_core_path=hami_core_path)
    try:
        return choose_mechanism(setting, probe)
    except EnforcementUnavailableError as error:
        log.warning("%s; falling back to the framework hook", error)
        return Mechanism.FRAMEWORK
