"""The log unit: hold the logs of running jobs to their cap, and remove the records and logs of jobs
deleted longer ago than the retention setting (and logs no record names)."""

from __future__ import annotations

import logging

from .. import events as ev
from ..joblog import trim
from .context import DaemonContext

log = logging.getLogger("runai_lite.daemon")
LOG_SUFFIX = ".log"


class LogKeeper:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx
        self._last_check = 0.0
        self._last_purge = 0.0
        self._running: set[str] = set()  # jobs seen running at the last check: trimmed once more after

    def __call__(self, now: float) -> bool:
        settings = self.ctx.settings
        changed = False
        if now - self._last_check >= settings.log_check_seconds:
            changed |= self._trim(now)
            self._last_check = now
        if now - self._last_purge >= max(1.0, min(settings.log_retention_seconds, 60.0)):
            self._last_purge = now
            changed |= self._purge(now)
        return changed

    def _trim(self, now: float) -> bool:
        store, cap = self.ctx.store, self.ctx.settings.log_cap
        running = {row.id for row in store.supervised_jobs()}

        ended = {row.id for row in store.finished_since(self._last_check)}  # last output since the last look
        trimmed = False
        for job_id in running | self._running | ended:
            dropped = trim(self.ctx.home.job_log(job_id), cap)
            if dropped:
                with store.write() as conn:
                    store.add_event(conn, job_id, ev.LOG_TRIMMED,
                                    f"log above {cap.max_bytes} bytes: {dropped} bytes of older output dropped "
                                    f"(the first {cap.head_bytes} bytes and the most recent output are kept)", now)
                trimmed = True
        self._running = running
        return trimmed

    def _purge(self, now: float) -> bool:
        store = self.ctx.store
        with store.write() as conn:
            purged = store.purge_deleted(conn, now - self.ctx.settings.log_retention_seconds)
        for job_id in purged:
            self.ctx.home.job_log(job_id).unlink(missing_ok=True)
        known = store.job_ids()
        strays = [p for p in self.ctx.home.logs.glob(f"*{LOG_SUFFIX}") if p.name[:-len(LOG_SUFFIX)] not in known]
        for path in strays:
            path.unlink(missing_ok=True)
        if purged or strays:
            log.info("removed %d deleted job(s) and %d log(s) past retention", len(purged), len(purged) + len(strays))
        return bool(purged)
