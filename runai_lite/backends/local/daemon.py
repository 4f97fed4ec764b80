"""The embedded controller: one per home, started in the background by the first command that needs
it (`control.ensure_daemon` runs `main()` here in a new session, with `--home H`).

Each cycle, woken by a command (a byte on the home's FIFO) or by a short tick:
1. supervise: read back which job attempts ended (the shim's exit file) and settle them, and send
   stopping jobs SIGTERM, then SIGKILL after the grace period;
2. schedule: build a `Snapshot` from the store, call `scheduler.plan`, and record the plan's
   intents in one transaction (`intents.py`);
3. realise MIG layouts through `agent.reconcile` and record the partitions that now exist;
4. start bound jobs whose resources are really free.

Every step reads its work from the store, so a daemon killed at any point is replaced by one that
carries on from there: it adopts job processes that still run (their attempt lock is held), settles
those that ended while it was down (their exit file), and relaunches attempts that never started.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ...agent import DesiredInstance, reconcile
from ...enforcement import (
    DEFAULT_HAMI_CORE_PATH,
    HOOK_DIR,
    EnforcementUnavailableError,
    Mechanism,
    choose_mechanism,
    for_allocation,
    probe_node,
)
from ...enforcement.failures import out_of_memory_note
from ...errors import RunaiLiteError
from ...gpu.driver import DriverError, GpuDriver
from ...gpu.drivers import open_driver
from ...gpu.simulated import SimulatedDriver
from ...model import Allocation, JobStatus, JobType, Snapshot
from ...scheduler import plan as schedule_plan
from . import events as ev
from .checks import CHECK_ENV
from .consistency import check_consistency
from .crashpoints import crash_point
from .intents import record_plan
from .paths import PIDFILE_READY, Home, open_private, write_private
from .runner import (
    CONTAINER_PATHS,
    PROCESS,
    Attempt,
    container_argv,
    container_enforcement_args,
    device_environment,
    log_tail,
    signal_group,
    stop_container,
)
from .snapshot import CREATING, DESTROYING, READY, STATIC, build_snapshot
from .store import JobRow, Store

log = logging.getLogger("runai_lite.daemon")
PARTITION_FAILED = "waiting for MIG partition"  # prefix of a pending reason carrying a driver error

TICK_SECONDS = 0.5
REPLAN_SECONDS = 5.0  # plan even when nothing seems to have changed, now and then
DRIFT_SECONDS = 10.0  # compare the GPUs with the store even when no partition is being changed
LAUNCH_GRACE_SECONDS = 5.0  # an attempt this young without a shim may still be starting
DEFAULT_GRACE_SECONDS = 10.0


@dataclass
class RetryClock:
    """Exponential backoff per key, for driver calls that failed."""

    delays: dict[object, tuple[float, float]] = field(default_factory=dict)  # key -> (next try, delay)

    def ready(self, key: object, now: float) -> bool:
        entry = self.delays.get(key)
        return entry is None or now >= entry[0]

    def failed(self, key: object, now: float) -> None:
        delay = min(30.0, self.delays.get(key, (0.0, 0.25))[1] * 2)
        self.delays[key] = (now + delay, delay)

    def succeeded(self, key: object) -> None:
        self.delays.pop(key, None)


class Daemon:
    def __init__(self, home: Home):
        self.home = home
        self.store = Store(home.db)
        config = self.store.all_config()
        self.node: str = config.get("node") or socket.gethostname()
        self.grace = float(config.get("grace_seconds", DEFAULT_GRACE_SECONDS))
        # A simulated machine is declared by `local init`; later daemons open it as it is (MIG modes
        # and partitions persist, as on real GPUs) and declare it only if its state file is gone.
        simulate = config.get("simulate")
        self.driver: GpuDriver = open_driver(
            home.root, None if simulate is None or SimulatedDriver.is_declared(home.root) else simulate)
        self.hami_core_path: str = config.get("hami_core_path") or DEFAULT_HAMI_CORE_PATH
        self.mechanism = self._mechanism(config.get("enforcement", "auto"), self.hami_core_path)
        with self.store.write() as conn:
            self.store.set_config(conn, "node", self.node)
            self.store.set_config(conn, "enforcement_mechanism", self.mechanism.value)
        self.children: dict[str, subprocess.Popen] = {}  # attempt lock path -> shim we started
        self.exiting: list[subprocess.Popen] = []  # shims that recorded their end but had not exited yet
        self.retry = RetryClock()
        self.stopping = False
        self.check_invariants = os.environ.get(CHECK_ENV) == "1"
        self._seen_version: int | None = None
        self._last_plan = 0.0
        self._last_drift = 0.0
        self.publish_gpus()

    def _mechanism(self, setting: str, hami_core_path: str) -> Mechanism:
        probe = probe_node(hami_core_path=hami_core_path)
        try:
            return choose_mechanism(setting, probe)
        except EnforcementUnavailableError as error:
            log.warning("%s; falling back to the framework hook", error)
            return Mechanism.FRAMEWORK

    # ------------------------------------------------------------------------------ the loop

    def run(self, wake_fd: int, ready: Callable[[], None] = lambda: None) -> None:
        """Cycle until stopped; `ready()` after the first cycle, which catches up with the store
        (adopts or settles job processes, finishes recorded intents)."""
        first = True
        while not self.stopping:
            busy = True
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
            wait_for_wake(wake_fd, TICK_SECONDS)

    def cycle(self, now: float) -> bool:
        """One pass; True when it changed something (another pass may then find more to do)."""
        self.exiting = [child for child in self.exiting if child.poll() is None]
        version = self.store.data_version()
        changed = version != self._seen_version
        self._seen_version = version
        changed |= self.supervise(now)
        if changed or now - self._last_plan >= REPLAN_SECONDS:
            changed |= self.schedule(now)
            self._last_plan = now
        changed |= self.supervise(now)  # stop what the plan preempted without waiting for a tick
        changed |= self.realise_mig(now)
        changed |= self.start_bound(now)
        if self.check_invariants:
            self.report(check_consistency(self.store, self.driver, self.node))
        return changed

    def report(self, problems: list[str]) -> None:
        if not problems:
            return
        log.error("invariants broken:\n  %s", "\n  ".join(problems))
        fd = open_private(self.home.root / "invariants.log")
        try:
            os.write(fd, "".join(f"{time.time():.3f} {p}\n" for p in problems).encode())
        finally:
            os.close(fd)

    # ------------------------------------------------------------------------------ GPUs

    def publish_gpus(self) -> None:
        """Write the driver's GPUs to the store (the CLI reads them there, never the driver), keep
        the static partitions of MIG GPUs the scheduler does not manage, and adopt partitions found
        on dynamic-MIG GPUs that the store does not know (made before it was marked) as idle."""
        devices = self.driver.gpus()
        with self.store.write() as conn:
            known = {g["gpu_index"]: g for g in self.store.gpus(self.node, conn)}
            conn.execute(f"DELETE FROM gpus WHERE node = ? AND gpu_index NOT IN ({','.join('?' * len(devices))})",
                         (self.node, *[d.index for d in devices]))
            for device in devices:
                model = self.driver.model(device.index)
                dynamic = bool(known[device.index]["dynamic_mig"]) if device.index in known else False
                if known.get(device.index) is not None and known[device.index]["uuid"] != device.uuid:
                    dynamic = False  # a different GPU now has this index
                conn.execute(
                    "INSERT OR REPLACE INTO gpus (node, gpu_index, uuid, model, memory_mib, memory_slices, mig_capable, "
                    "mig_enabled, simulated, dynamic_mig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (self.node, device.index, device.uuid, model.name, device.memory_mib, model.memory_slices,
                     int(model.mig_capable), int(device.mig_enabled), int(device.simulated), int(dynamic)))
                self._publish_partitions(conn, device.index, dynamic and device.mig_enabled, device.mig_enabled)

    def _publish_partitions(self, conn, index: int, dynamic: bool, mig_enabled: bool) -> None:
        actual = self.driver.mig_instances(index) if mig_enabled else []
        rows = conn.execute("SELECT start, profile, state FROM mig_layout WHERE node = ? AND gpu_index = ?",
                            (self.node, index)).fetchall()
        if not dynamic:
            conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ?", (self.node, index))
        tracked = {(r["start"], r["profile"]) for r in rows}
        for inst in actual:
            if not inst.complete or (dynamic and (inst.start, inst.profile) in tracked):
                continue
            conn.execute(
                "INSERT OR REPLACE INTO mig_layout (node, gpu_index, start, profile, size, state, uuid) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.node, index, inst.start, inst.profile, inst.size, READY if dynamic else STATIC, inst.uuid))

    # ------------------------------------------------------------------------------ scheduling

    def snapshot(self) -> Snapshot:
        with self.store.read() as conn:
            rows = self.store.active_jobs(conn)
            gpus = self.store.gpus(self.node, conn)
            layout = self.store.mig_layout(self.node, conn)
            projects = conn.execute("SELECT name, deserved_gpus FROM projects").fetchall()
        return build_snapshot(self.node, gpus, layout, rows, projects)

    def schedule(self, now: float) -> bool:
        snapshot = self.snapshot()
        if not any(job.status == JobStatus.PENDING for job in snapshot.jobs):
            return False
        plan = schedule_plan(snapshot)
        if not plan.actions and not plan.pending:
            return False
        with self.store.write() as conn:
            applied = record_plan(self.store, conn, plan, self.node, now)
        if applied:
            crash_point("plan-recorded")
        return applied > 0

    # ------------------------------------------------------------------------------ processes

    def supervise(self, now: float) -> bool:
        """Settle attempts that ended; signal the ones being stopped. True when a job changed."""
        changed = False
        for row in self.store.jobs("WHERE status IN ('Running', 'Preempted')"):
            attempt = Attempt(self.home, row.id, row.attempts)
            state, code = attempt.state()
            child = self.children.get(str(attempt.lock))
            if state == "absent" and (child is not None and child.poll() is None
                                      or now - (row.started_at or 0) < LAUNCH_GRACE_SECONDS):
                state = "running"
            if state == "running":
                changed |= self._keep_running(row, attempt, now)
            elif state == "exited":
                changed |= self._settle(row, attempt, code, now)
            else:
                changed |= self._never_started(row, attempt, now)
        return changed

    def _keep_running(self, row: JobRow, attempt: Attempt, now: float) -> bool:
        pid = row.pid or attempt.pid()
        if row.pid is None and pid is not None:  # adopted after a restart, or the launch's pid write was lost
            with self.store.write() as conn:
                self.store.update_job(conn, row.id, pid=pid)
        if pid is None or not (row.delete_requested or row.status == JobStatus.PREEMPTED):
            return False
        if row.stop_sent_at is None:
            signal_group(pid, signal.SIGTERM)
            crash_point("stop-signalled")
            if row.runtime != PROCESS:
                stop_container(row.runtime, row.id, self.grace)
            with self.store.write() as conn:
                self.store.update_job(conn, row.id, stop_sent_at=now)
            return True
        if row.kill_sent_at is None and now - row.stop_sent_at >= self.grace:
            signal_group(pid, signal.SIGKILL)
            with self.store.write() as conn:
                self.store.update_job(conn, row.id, kill_sent_at=now)
                self.store.add_event(conn, row.id, ev.WARNING,
                                     f"did not stop within {self.grace:g} s of SIGTERM; sent SIGKILL", now)
            return True
        return False

    def _settle(self, row: JobRow, attempt: Attempt, code: int | None, now: float) -> bool:
        """The attempt ended with `code`: decide what the job is now, in one transaction."""
        note = None
        if code:  # read before taking the write lock: why it failed, if it ran out of its GPU memory
            note = out_of_memory_note(log_tail(self.home.job_log(row.id)), row.enforcement, row.memory_limit_mib)
        with self.store.write() as conn:
            current = self.store.job(row.id, conn)
            if current is None or current.attempts != row.attempts or current.status not in ("Running", "Preempted"):
                return False
            released = dict(allocation=None, pid=None, stop_sent_at=None, kill_sent_at=None, exit_code=code)
            if current.delete_requested:
                self.store.update_job(conn, row.id, status=JobStatus.DELETED.value, finished_at=now, **released)
                self.store.add_event(conn, row.id, ev.DELETED, f"deleted; its process stopped (exit code {code})", now)
            elif current.status == JobStatus.PREEMPTED:
                self.store.update_job(conn, row.id, status=JobStatus.PENDING.value,
                                      pending_reason="requeued after preemption", **released)
                self.store.add_event(conn, row.id, ev.REQUEUED, f"stopped (exit code {code}); back in the queue", now)
            elif code == 0:
                self.store.update_job(conn, row.id, status=JobStatus.SUCCEEDED.value, finished_at=now, **released)
                self.store.add_event(conn, row.id, ev.EXITED, "exit code 0", now)
            else:
                self._failed(conn, current, code, note, now, released)
        crash_point("settled")
        self._forget(row, attempt)
        return True

    def _failed(self, conn, row: JobRow, code: int | None, note: str | None, now: float, released: dict) -> None:
        failures = row.failures + 1
        limit = row.job_spec.backoff_limit if row.job_type is JobType.TRAIN else 0
        self.store.add_event(conn, row.id, ev.EXITED, f"exit code {code}" + (f": {note}" if note else ""), now)
        if failures <= limit:
            self.store.update_job(conn, row.id, status=JobStatus.PENDING.value, failures=failures,
                                  pending_reason=f"retrying after exit code {code}", **released)
            self.store.add_event(conn, row.id, ev.RETRYING, f"retry {failures} of {limit} (--backoff-limit)", now)
        else:
            self.store.update_job(conn, row.id, status=JobStatus.FAILED.value, failures=failures, finished_at=now,
                                  **released)

    def _never_started(self, row: JobRow, attempt: Attempt, now: float) -> bool:
        """The daemon died between recording a start and launching it: launch again (or settle a
        job that was to be stopped anyway)."""
        if row.delete_requested or row.status == JobStatus.PREEMPTED:
            return self._settle(row, attempt, None, now)
        with self.store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'Pending', attempts = attempts - 1, pid = NULL, pending_reason = ? "
                "WHERE id = ? AND attempts = ? AND status = 'Running'",
                ("starting again: the daemon stopped before the process started", row.id, row.attempts))
            if cursor.rowcount:
                self.store.add_event(conn, row.id, ev.WARNING, "the daemon stopped before the process started; "
                                     "starting it again", now)
        self._forget(row, attempt)
        return True

    def _forget(self, row: JobRow, attempt: Attempt) -> None:
        child = self.children.pop(str(attempt.lock), None)
        if child is not None and child.poll() is None:
            self.exiting.append(child)  # reaped by a later cycle, so that no zombie is left
        alloc = row.alloc
        unregister = getattr(self.driver, "unregister_process", None)
        if unregister is not None and alloc is not None:
            for uuid in _device_uuids(alloc):
                unregister(uuid, row.pid)
        attempt.cleanup()

    # ------------------------------------------------------------------------------ MIG

    def realise_mig(self, now: float) -> bool:
        """Make the dynamic-MIG GPUs match the store's layout; record what now exists."""
        drift = now - self._last_drift >= DRIFT_SECONDS
        layout = self.store.mig_layout(self.node)
        work: dict[int, list] = {}
        for part in layout:
            if part["state"] != STATIC:
                work.setdefault(part["gpu_index"], []).append(part)
        dynamic = [g["gpu_index"] for g in self.store.gpus(self.node) if g["dynamic_mig"]]
        holders = self._mig_holders()
        desired: dict[int, list[DesiredInstance]] = {}
        for index in dynamic:
            parts = work.get(index, [])
            pending = any(p["state"] in (CREATING, DESTROYING) for p in parts)
            if not (pending or drift) or not self.retry.ready(("mig", index), now):
                continue
            if any(p["state"] == DESTROYING and (index, p["start"]) in holders["stopping"] for p in parts):
                continue  # a stopping job still runs on a partition to be destroyed: wait for it
            desired[index] = [
                DesiredInstance(profile=p["profile"], start=p["start"],
                                required=p["state"] == CREATING or (index, p["start"]) in holders["holding"])
                for p in parts if p["state"] != DESTROYING
            ]
        if drift:
            self._last_drift = now
            self._refresh_mig_modes()
        if not desired:
            return False
        result = reconcile(self.driver, desired)
        crash_point("mig-reconciled")
        changed = False
        for gpu in result.gpus:
            changed |= self._record_layout(gpu, work.get(gpu.gpu_index, []), now)
            if gpu.errors:
                self.retry.failed(("mig", gpu.gpu_index), now)
            else:
                self.retry.succeeded(("mig", gpu.gpu_index))
        for error in result.machine_errors:
            log.error("MIG reconcile: %s", error.message)
        if changed:
            crash_point("mig-recorded")
        return changed

    def _refresh_mig_modes(self) -> None:
        """An administrator may switch MIG mode on or off (nvidia-smi -mig) while the daemon runs."""
        try:
            modes = {d.index: int(d.mig_enabled) for d in self.driver.gpus()}
        except DriverError as error:
            log.warning("cannot read the GPUs' MIG modes: %s", error.message)
            return
        with self.store.write() as conn:
            for index, enabled in modes.items():
                conn.execute("UPDATE gpus SET mig_enabled = ? WHERE node = ? AND gpu_index = ? AND mig_enabled != ?",
                             (enabled, self.node, index, enabled))

    def _mig_holders(self) -> dict[str, set[tuple[int, int]]]:
        """Partitions (GPU, start) held by jobs that will run or run there, and by stopping jobs."""
        holding: set[tuple[int, int]] = set()
        stopping: set[tuple[int, int]] = set()
        for row in self.store.active_jobs():
            alloc = row.alloc
            if alloc is None or alloc.kind != "mig" or alloc.mig_start is None:
                continue
            key = (alloc.gpu_indices[0], alloc.mig_start)
            if row.delete_requested or row.status == JobStatus.PREEMPTED:
                if row.pid is not None and Attempt(self.home, row.id, row.attempts).alive():
                    stopping.add(key)
            else:
                holding.add(key)
        return {"holding": holding, "stopping": stopping}

    def _record_layout(self, gpu, parts, now: float) -> bool:
        actual = {(i.start, i.profile): i for i in gpu.instances}
        failures = {(e.start, e.profile): e for e in gpu.errors if e.action == "create"}
        changed = False
        with self.store.write() as conn:
            for part in parts:
                key = (part["start"], part["profile"])
                where = (self.node, gpu.gpu_index, part["start"], part["profile"])
                found = actual.get(key)
                label = f"{part['profile']} at slice {part['start']} of GPU {gpu.gpu_index}"
                if part["state"] == DESTROYING:
                    if found is None:
                        conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ? AND start = ? "
                                     "AND profile = ?", where)
                        for job_id in {part["last_job"], part["for_job"]} - {None}:
                            self.store.add_event(conn, job_id, ev.PARTITION_DESTROYED, f"{label} destroyed", now)
                        changed = True
                    continue
                if found is not None:
                    if part["state"] != READY or part["uuid"] != found.uuid:
                        conn.execute("UPDATE mig_layout SET state = ?, uuid = ? WHERE node = ? AND gpu_index = ? "
                                     "AND start = ? AND profile = ?", (READY, found.uuid, *where))
                        if part["state"] == CREATING and part["for_job"]:
                            self.store.add_event(conn, part["for_job"], ev.PARTITION_CREATED,
                                                 f"{label} created ({found.uuid})", now)
                        changed = True
                    changed |= self._give_uuid(conn, gpu.gpu_index, gpu.gpu_uuid, part["start"], found.uuid)
                elif part["state"] == READY and part["uuid"] is not None and key not in failures:
                    # an idle partition that vanished (destroyed outside runai-lite): forget it
                    conn.execute("DELETE FROM mig_layout WHERE node = ? AND gpu_index = ? AND start = ? "
                                 "AND profile = ?", where)
                    changed = True
                elif key in failures and part["for_job"]:
                    reason = f"{PARTITION_FAILED} {label}: {failures[key].message}; retrying"
                    conn.execute("UPDATE jobs SET pending_reason = ? WHERE id = ? AND pending_reason IS NOT ?",
                                 (reason, part["for_job"], reason))
        return changed

    def _give_uuid(self, conn, index: int, gpu_uuid: str, start: int, mig_uuid: str) -> bool:
        """Bound jobs on the partition learn its UUID (and their GPU's)."""
        changed = False
        for row in self.store.jobs("WHERE status = 'Pending' AND allocation IS NOT NULL", conn=conn):
            alloc = row.alloc
            if (alloc and alloc.kind == "mig" and alloc.gpu_indices[0] == index and alloc.mig_start == start
                    and alloc.mig_uuid != mig_uuid):
                updated = alloc.model_copy(update={"mig_uuid": mig_uuid, "gpu_uuids": (gpu_uuid,)})
                self.store.update_job(conn, row.id, allocation=updated.model_dump_json())
                changed = True
        return changed

    # ------------------------------------------------------------------------------ starting

    def start_bound(self, now: float) -> bool:
        bound = self.store.jobs("WHERE status = 'Pending' AND allocation IS NOT NULL AND delete_requested = 0 "
                                "ORDER BY submitted_at")
        if not bound:
            return False
        busy_gpus = self._gpus_of_stopping_jobs()
        layout = {(p["gpu_index"], p["start"], p["profile"]): p for p in self.store.mig_layout(self.node)}
        uuids = {g["gpu_index"]: g["uuid"] for g in self.store.gpus(self.node)}
        started = False
        for row in bound:
            alloc = row.alloc
            assert alloc is not None
            waiting = self._waiting_for(alloc, busy_gpus, layout)
            if waiting:
                # the driver's reason why the partition could not be made says more than "creating"
                keep = alloc.kind == "mig" and (row.pending_reason or "").startswith(PARTITION_FAILED)
                if row.pending_reason != waiting and not keep:
                    with self.store.write() as conn:
                        self.store.update_job(conn, row.id, pending_reason=waiting)
                continue
            if alloc.kind == "mig":
                part = layout[(alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile)]
                alloc = alloc.model_copy(update={"mig_uuid": part["uuid"], "gpu_uuids": (uuids[alloc.gpu_indices[0]],)})
            elif not alloc.gpu_uuids:
                alloc = alloc.model_copy(update={"gpu_uuids": tuple(uuids[i] for i in alloc.gpu_indices)})
            try:
                started |= self.launch(row, alloc, now)
            except Exception:  # one job that cannot start must not keep the others from starting
                log.error("starting %s failed:\n%s", row.key, traceback.format_exc())
        return started

    def _gpus_of_stopping_jobs(self) -> set[int]:
        busy: set[int] = set()
        for row in self.store.jobs("WHERE status = 'Preempted' OR (delete_requested = 1 AND status = 'Running')"):
            alloc = row.alloc
            if alloc is not None and Attempt(self.home, row.id, row.attempts).alive():
                busy.update(alloc.gpu_indices)
        return busy

    @staticmethod
    def _waiting_for(alloc: Allocation, busy_gpus: set[int], layout: dict) -> str | None:
        if alloc.kind == "mig":
            part = layout.get((alloc.gpu_indices[0], alloc.mig_start, alloc.mig_profile))
            if part is None or part["state"] != READY or not part["uuid"]:
                return f"starting: creating MIG partition {alloc.mig_profile} at slice {alloc.mig_start}"
            return None
        if busy_gpus.intersection(alloc.gpu_indices):
            return "starting: waiting for a preempted job to stop on its GPU"
        return None

    def launch(self, row: JobRow, alloc: Allocation, now: float) -> bool:
        spec = row.job_spec
        on_gpus = alloc if alloc.gpu_indices else None  # a job that asked for no GPU gets none
        devices_env = device_environment(spec, on_gpus, row.id)
        in_container = row.runtime != PROCESS
        paths = CONTAINER_PATHS if in_container else {"hook_dir": HOOK_DIR, "hami_core_library": self.hami_core_path}
        enforcement = on_gpus and for_allocation(
            on_gpus, self.mechanism, gpu_memory_mib=self._gpu_memory(on_gpus),
            hami_shared_cache=None if in_container else str(self.home.run / f"{row.id}.cudevshr"), **paths)
        # `overlay` is what the job adds to an environment (kept for `runai exec`); `env` is the
        # daemon's environment with it, PYTHONPATH and LD_PRELOAD prepended rather than replaced.
        overlay = enforcement.apply(devices_env) if enforcement else devices_env
        env = enforcement.apply({**os.environ, **devices_env}) if enforcement else {**os.environ, **devices_env}
        if in_container:
            extra = container_enforcement_args(enforcement, self.hami_core_path) if enforcement else []
            argv = container_argv(row.runtime, row.id, spec, overlay, overlay.get("NVIDIA_VISIBLE_DEVICES"),
                                  real_gpus=not self.driver.simulated, extra=extra)
            cwd = None
        else:
            argv, cwd = list(spec.command), spec.working_dir
        attempt = Attempt(self.home, row.id, row.attempts + 1)
        with self.store.write() as conn:
            cursor = conn.execute(
                "UPDATE jobs SET status = 'Running', attempts = ?, started_at = ?, pid = NULL, allocation = ?, "
                "job_env = ?, enforcement = ?, memory_limit_mib = ?, pending_reason = NULL, stop_sent_at = NULL, "
                "kill_sent_at = NULL, exit_code = NULL WHERE id = ? AND status = 'Pending' AND attempts = ? "
                "AND allocation IS NOT NULL AND delete_requested = 0",
                (attempt.number, now, alloc.model_dump_json(), _json(overlay),
                 enforcement.mechanism.value if enforcement else None,
                 enforcement.limit_mib if enforcement else alloc.memory_mib, row.id, row.attempts))
            if not cursor.rowcount:
                return False
            self.store.add_event(conn, row.id, ev.STARTED, _started_message(row, alloc, attempt.number), now)
        crash_point("start-recorded")
        attempt.cleanup()
        try:
            child = attempt.launch(argv, env, cwd)
        except OSError as error:
            self._launch_failed(row, attempt, error, now)
            return True
        self.children[str(attempt.lock)] = child
        crash_point("process-launched")
        register = getattr(self.driver, "register_process", None)
        if register is not None:
            for uuid in _device_uuids(alloc):
                register(uuid, child.pid)
        with self.store.write() as conn:
            conn.execute("UPDATE jobs SET pid = ? WHERE id = ? AND attempts = ?", (child.pid, row.id, attempt.number))
        return True

    def _launch_failed(self, row: JobRow, attempt: Attempt, error: OSError, now: float) -> None:
        log_fd = open_private(self.home.job_log(row.id))
        try:
            os.write(log_fd, f"runai-lite: cannot start the job: {error}\n".encode())
        finally:
            os.close(log_fd)
        write_private(attempt.exitfile, '{"code": 126, "signal": null}')

    def _gpu_memory(self, alloc: Allocation) -> int | None:
        for g in self.store.gpus(self.node):
            if g["gpu_index"] == alloc.gpu_indices[0]:
                return g["memory_mib"]
        return None

    def close(self) -> None:
        self.driver.close()
        self.store.close()


def _device_uuids(alloc: Allocation) -> list[str]:
    if alloc.kind == "mig":
        return [alloc.mig_uuid] if alloc.mig_uuid else []
    return list(alloc.gpu_uuids)


def _started_message(row: JobRow, alloc: Allocation, attempt: int) -> str:
    where = alloc.mig_uuid if alloc.kind == "mig" else ",".join(alloc.gpu_uuids) or "no GPU"
    how = "directly" if row.runtime == PROCESS else f"with {row.runtime}"
    return f"attempt {attempt} started {how} on {alloc.node} ({where})"


def _json(env: dict[str, str]) -> str:
    return json.dumps(env, sort_keys=True)


# ---------------------------------------------------------------------------------- waking


def open_wake_fifo(home: Home) -> int:
    """The daemon's end of the wake FIFO. Opened read-write so it never sees end-of-file when the
    last command closes its end."""
    try:
        os.mkfifo(home.wake_fifo, 0o600)
    except FileExistsError:
        pass
    return os.open(home.wake_fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def wait_for_wake(fd: int, timeout: float) -> None:
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runai-lite-daemon", description="the embedded runai-lite controller")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    home = Home.at(args.home)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    lock_fd = os.open(home.daemon_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another daemon serves this home
    # The pid goes out at once (so `local stop` never signals a stale one); "ready" once serving.
    write_private(home.daemon_pid, f"{os.getpid()}\n")
    home.daemon_error.unlink(missing_ok=True)
    try:
        daemon = Daemon(home)
    except Exception as error:  # whatever stops it starting is reported to the command that started it
        write_private(home.daemon_error, str(error) if isinstance(error, RunaiLiteError) else
                      f"{type(error).__name__}: {error}")
        home.daemon_pid.unlink(missing_ok=True)
        log.error("cannot start: %s", error)
        return 3
    wake_fd = open_wake_fifo(home)

    def stop(signum, frame):
        daemon.stopping = True
        try:
            os.write(wake_fd, b"!")  # end the wait now, not at the next tick
        except OSError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("runai-lite daemon %d serving %s on node %s", os.getpid(), home.root, daemon.node)
    try:
        daemon.run(wake_fd, ready=lambda: write_private(home.daemon_pid, f"{os.getpid()}\n{PIDFILE_READY}\n"))
    finally:
        home.daemon_pid.unlink(missing_ok=True)
        daemon.close()
        log.info("runai-lite daemon %d stopped", os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
