"""The supervision unit: settle job attempts that ended, and stop the jobs that are to stop
(SIGTERM to every process of the attempt, then SIGKILL to all of it after the grace period).
Processes are reached only through the tracker.

An attempt whose main process ended while processes it started still run (a `setsid` grandchild,
a daemonised helper) is *draining*: those processes are killed with the attempt (as a container's
are when its main process ends) and the job stays Running, keeping its GPU, until none is left."""

from __future__ import annotations

import signal

from ....enforcement.failures import out_of_memory_note
from ....model import JobStatus, JobType
from .. import events as ev
from ...attempts import NOT_RUNNABLE, AttemptEnd
from ..crashpoints import crash_point
from ..runner import PROCESS, log_tail, runtime_failure_note, stop_container
from ..store import JobRow, Store
from ..tracking.protocol import KILLED_EXIT_CODE
from .context import DaemonContext


def held_by_stopping_jobs(store: Store) -> set[tuple[int, int | None]]:
    """(GPU, MIG start or None) still held by jobs being stopped. A victim's GPU or partition is
    handed over, or destroyed, only once supervision has seen every one of its processes gone and
    settled it, never because a process check elsewhere happened to find none: otherwise the store
    would show two holders of one device until the victim is settled."""
    held: set[tuple[int, int | None]] = set()
    for row in store.supervised_jobs():
        alloc = row.alloc
        if row.stopping and alloc is not None:
            held.update((index, alloc.mig_start if alloc.kind == "mig" else None) for index in alloc.gpu_indices)
    return held


# A container's runtime SIGKILLs it after the grace period itself; the attempt's own processes (the
# runtime's client and monitor) are killed only if they are still there well after that.
CONTAINER_GRACE_FACTOR = 2


class Supervisor:
    def __init__(self, ctx: DaemonContext):
        self.ctx = ctx
        self.drained: set[tuple[str, int]] = set()  # attempts whose leftovers were killed (said once)
        self.draining_since: dict[tuple[str, int], float] = {}  # container attempts whose client ended

    def __call__(self, now: float) -> bool:
        """True when a job changed."""
        changed = False
        for row in self.ctx.store.supervised_jobs():
            state, code = self.ctx.tracker.state(row.id, row.attempts)
            if state == "absent" and now - (row.started_at or 0) < self.ctx.settings.launch_grace_seconds:
                state = "running"
            if state == "draining":
                changed |= self._drain(row, code, now)
            elif state == "running":
                changed |= self._keep_running(row, now)
            elif state == "exited":
                changed |= self._settle(row, code, now)
            else:
                changed |= self._never_started(row, now)
        return changed

    def _keep_running(self, row: JobRow, now: float) -> bool:
        store, tracker, grace = self.ctx.store, self.ctx.tracker, self.ctx.settings.grace_seconds
        pid = row.pid or tracker.pid(row.id, row.attempts)
        if row.pid is None and pid is not None:  # adopted after a restart, or the launch's pid write was lost
            with store.write() as conn:
                store.update_job(conn, row.id, pid=pid)
        if pid is None or not row.stopping:
            return False
        in_container = row.runtime != PROCESS
        if row.stop_sent_at is None:
            # A container is stopped by its runtime alone (stop signal, SIGKILL after the grace, then
            # its removal): SIGTERM to the attempt would reach the runtime's monitor too, and the
            # container would be left half removed.
            if in_container:
                stop_container(self.ctx.container_host(row.runtime), row.id, grace)
            else:
                tracker.signal(row.id, row.attempts, signal.SIGTERM)
            crash_point("stop-signalled")
            with store.write() as conn:
                store.update_job(conn, row.id, stop_sent_at=now)
            return True
        if row.kill_sent_at is None and now - row.stop_sent_at >= grace * (CONTAINER_GRACE_FACTOR if in_container else 1):
            tracker.kill(row.id, row.attempts)
            with store.write() as conn:
                store.update_job(conn, row.id, kill_sent_at=now)
                store.add_event(conn, row.id, ev.WARNING, f"did not stop within {grace:g} s of SIGTERM; sent SIGKILL",
                                now)
            return True
        return False

    def _drain(self, row: JobRow, code: int | None, now: float) -> bool:
        """The main process ended with `code`; kill what it left behind, say so once. A container's
        client ends before the runtime's monitor (conmon) has removed the container: that gets the
        grace period to finish on its own."""
        key = (row.id, row.attempts)
        if row.runtime != PROCESS and key not in self.drained:
            since = self.draining_since.setdefault(key, now)
            if now - since < self.ctx.settings.grace_seconds:
                return False
        leftovers = self.ctx.tracker.kill(row.id, row.attempts)
        if not leftovers or key in self.drained:
            return False
        self.drained.add(key)
        pids = ", ".join(map(str, leftovers))
        with self.ctx.store.write() as conn:
            self.ctx.store.add_event(conn, row.id, ev.WARNING, f"the job's main process ended (exit code {code}) but "
                                     f"processes it started were still running (pid {pids}): killed them; its "
                                     "devices are released once none is left", now)
        return True

    def _settle(self, row: JobRow, code: int | None, now: float) -> bool:
        """The attempt ended with `code` (None: not known): decide what the job is now, in one
        transaction. A code is never made up: when the attempt was killed by this daemon it is
        SIGKILL's, otherwise an unknown end fails the job without a retry (it may have finished
        its work: running it again could do it twice)."""
        store = self.ctx.store
        if code is None and row.kill_sent_at is not None:
            code = KILLED_EXIT_CODE  # we killed all of it
        recorded = self.ctx.tracker.exit_note(row.id, row.attempts)
        note = None
        if code:  # read before taking the write lock: why it failed (out of its GPU memory, no container)
            output = log_tail(self.ctx.home.job_log(row.id))
            note = (out_of_memory_note(output, row.enforcement, row.memory_limit_mib)
                    or runtime_failure_note(row.runtime, code, output))
        with store.write() as conn:
            current = store.job(row.id, conn)
            if current is None or current.attempts != row.attempts or current.status not in (JobStatus.RUNNING,
                                                                                             JobStatus.PREEMPTED):
                return False
            released = dict(allocation=None, pid=None, stop_sent_at=None, kill_sent_at=None, exit_code=code,
                            suspend_requested=0)
            if recorded:
                store.add_event(conn, row.id, ev.EXIT_RECORDED_LATE, recorded, now)
            if current.delete_requested:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.DELETED)
                store.update_job(conn, row.id, status=JobStatus.DELETED.value, finished_at=now, **released)
                store.add_event(conn, row.id, ev.DELETED, f"deleted; its process stopped (exit code {code})", now)
            elif current.suspend_requested:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.SUSPENDED)
                store.update_job(conn, row.id, status=JobStatus.SUSPENDED.value, pending_reason=None, **released)
                store.add_event(conn, row.id, ev.SUSPENDED, f"suspended; its process stopped (exit code {code}); "
                                f"its GPUs are free until `runai resume {row.name} -p {row.project}`", now)
            elif current.status == JobStatus.PREEMPTED:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.PREEMPTED)
                store.update_job(conn, row.id, status=JobStatus.PENDING.value,
                                 pending_reason="requeued after preemption", **released)
                store.add_event(conn, row.id, ev.REQUEUED, f"stopped (exit code {code}); back in the queue", now)
            elif code is None:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.UNKNOWN)
                store.update_job(conn, row.id, status=JobStatus.FAILED.value, failures=current.failures + 1,
                                 finished_at=now, **released)
                store.add_event(conn, row.id, ev.EXIT_UNKNOWN, "its supervisor was killed and the daemon could not "
                                "wait for the job itself (it restarted meanwhile): how the job ended is not known, so "
                                "it is not retried", now)
            elif code == 0:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.SUCCEEDED)
                store.update_job(conn, row.id, status=JobStatus.SUCCEEDED.value, finished_at=now, **released)
                store.add_event(conn, row.id, ev.EXITED, "exit code 0", now)
            else:
                store.end_attempt(conn, row.id, row.attempts, now, code, AttemptEnd.FAILED)
                self._failed(conn, current, code, note, now, released)
        crash_point("settled")
        self._forget(row)
        return True

    def _failed(self, conn, row: JobRow, code: int, note: str | None, now: float, released: dict) -> None:
        """A failed attempt: retried after its backoff while the job's backoff limit allows, unless
        the command could not be run at all (no retry would find it either)."""
        store = self.ctx.store
        failures = row.failures + 1
        limit = row.job_spec.backoff_limit if row.job_type is JobType.TRAIN else 0
        store.add_event(conn, row.id, ev.EXITED, f"exit code {code}" + (f": {note}" if note else ""), now)
        unrunnable = NOT_RUNNABLE.get(code)
        if unrunnable is None and failures <= limit:
            delay = self.ctx.settings.retry_delay(failures)
            store.update_job(conn, row.id, status=JobStatus.PENDING.value, failures=failures, retry_at=now + delay,
                             pending_reason=f"backing off {delay:g} s after exit code {code} "
                                            f"(retry {failures} of {limit})" + (f": {note}" if note else ""),
                             **released)
            store.add_event(conn, row.id, ev.RETRYING, f"retry {failures} of {limit} (--backoff-limit) in {delay:g} s",
                            now)
            return
        store.update_job(conn, row.id, status=JobStatus.FAILED.value, failures=failures, finished_at=now, **released)
        if unrunnable is not None:
            store.add_event(conn, row.id, ev.NOT_RETRIED, f"exit code {code}: {unrunnable}; not retried, since a "
                            "retry could not run it either (see `runai logs`)", now)
        else:
            store.add_event(conn, row.id, ev.BACKOFF_LIMIT_EXCEEDED,
                            f"failed {failures} time(s), above its backoff limit of {limit}: not retried again", now)

    def _never_started(self, row: JobRow, now: float) -> bool:
        """The daemon died between recording a start and launching it: launch again (or settle a
        job that was to be stopped anyway)."""
        if row.stopping:
            return self._settle(row, None, now)
        store = self.ctx.store
        with store.write() as conn:
            if store.unstart(conn, row.id, row.attempts, "starting again: the daemon stopped before the process started"):
                store.add_event(conn, row.id, ev.WARNING, "the daemon stopped before the process started; "
                                "starting it again", now)
        self._forget(row)
        return True

    def _forget(self, row: JobRow) -> None:
        self.ctx.tracker.forget(row.id, row.attempts)
        self.drained.discard((row.id, row.attempts))
        self.draining_since.pop((row.id, row.attempts), None)
        alloc = row.alloc
        unregister = getattr(self.ctx.driver, "unregister_process", None)
        if unregister is not None and alloc is not None:
            for uuid in alloc.device_uuids:
                unregister(uuid, row.pid)
