"""The audit unit: the daemon checks its own consistency (`consistency.audit`) every
`consistency_seconds`, or after every cycle when tests ask for it, and acts on what it can mend.

A process of a job that should have none (finished, deleted, not started: one that escaped its
supervisor, e.g. a `setsid` grandchild) may hold the job's GPU or MIG partition while the scheduler
gives it to another job: it is killed, and the job's history says so. Every finding is also logged
and appended to `invariants.log` in the home, where an administrator (or a test) finds it.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from .. import events as ev
from ..consistency import audit
from ..paths import open_private
from ....model import JobStatus
from ..store import JobRow
from .context import DaemonContext

log = logging.getLogger("runai_lite.daemon")
# a job in these has its processes by right (one without an allocation is only reported)
ACTIVE_PROCESS_STATUSES = (JobStatus.RUNNING, JobStatus.PREEMPTED)


class Auditor:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx
        self._last = 0.0

    def __call__(self, now: float) -> bool:
        settings = self.ctx.settings
        if not settings.check_invariants and now - self._last < settings.consistency_seconds:
            return False
        self._last = now
        problems, strays = audit(self.ctx.store, self.ctx.driver, self.ctx.node)
        self.report(problems)
        finished = [(row, pids, state) for row, pids, state in strays if row.status not in ACTIVE_PROCESS_STATUSES]
        for row, pids, state in finished:
            self._kill(row, pids, state, now)
        return bool(finished)

    def _kill(self, row: JobRow, pids: list[int], state: str, now: float) -> None:
        killed = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
        if not killed:
            return
        held = _devices(row)
        message = (f"process {', '.join(map(str, killed))} of this job ({state}) was still running"
                   + (f" with {held}" if held else "") + "; killed")
        log.warning("job %s: %s", row.key, message)
        with self.ctx.store.write() as conn:
            self.ctx.store.add_event(conn, row.id, ev.PROCESS_KILLED, message, now)

    def report(self, problems: list[str]) -> None:
        if not problems:
            return
        log.error("invariants broken:\n  %s", "\n  ".join(problems))
        fd = open_private(self.ctx.home.root / "invariants.log")
        try:
            os.write(fd, "".join(f"{time.time():.3f} {p}\n" for p in problems).encode())
        finally:
            os.close(fd)


def _devices(row: JobRow) -> str:
    """What the job's processes were given to use, read from the environment it started with."""
    return row.env().get("NVIDIA_VISIBLE_DEVICES", "") if row.env().get("NVIDIA_VISIBLE_DEVICES") != "void" else ""
