"""The daemon's one window onto job processes: the units speak of (job id, attempt number) and
never touch pids, lock files, exit files or cgroups themselves.

`AttemptProcesses` adapts a `tracking.ProcessTracker`, chosen once at start from a probe of the
machine (cgroup v2, cgroup v1 or the process tree), and the device confiner: it opens the job's
log (owned by the job's account), starts attempts, reads their state, signals and kills them, and
keeps the shims it started until they are reaped. What was chosen, and why, is written to the
store's config for `runai-adm local status`.

The daemon is its shims' child subreaper: when a shim is killed while its job goes on, the job
becomes the daemon's child, and its end is read by `waitpid` and written to the attempt's exit
file (`recorded_by`), so that the status is neither lost nor invented. A daemon that restarted in
between cannot wait for it: that attempt ends with no code, which supervision reports as unknown.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..joblog import append_line_once
from ..paths import Home, open_private, write_private
from ..tracking.choice import (
    TRACKING_ENV,
    TrackingChoice,
    TrackingProbe,
    TrackingUnavailableError,
    choose_tracking,
    instance_name,
    open_confiner,
    open_tracker,
    probe_machine,
    release,
)
from ..tracking.devices import Confinement, DeviceConfiner, JobDevices
from ..tracking.files import AttemptFiles
from ..tracking.protocol import Phase, ProcessTracker, RunAs, TrackingKind

log = logging.getLogger("runai_lite.daemon")

AttemptState = Literal["running", "draining", "exited", "absent"]


@dataclass(frozen=True)
class Launched:
    pid: int
    confinement: Confinement
    confinement_note: str


class AttemptProcesses:
    def __init__(self, home: Home, tracker: ProcessTracker, confiner: DeviceConfiner, choice: TrackingChoice,
                 probe: TrackingProbe | None = None, instance: str = ""):
        self.home, self.tracker, self.confiner, self.choice = home, tracker, confiner, choice
        self.probe, self.instance = probe, instance
        self.children: dict[str, subprocess.Popen] = {}  # attempt name -> shim we started
        self.exiting: list[subprocess.Popen] = []  # shims that recorded their end but had not exited yet
        self.orphan_exits: dict[str, dict] = {}  # attempt name -> an end this daemon waited for, until written

    @classmethod
    def open(cls, home: Home, setting: str = "auto") -> AttemptProcesses:
        """Probe the machine and choose; an explicit setting it cannot honour falls back to the
        process tree, with a warning (as an enforcement setting does)."""
        instance = instance_name(home.root)
        probe = probe_machine(instance)
        release(probe, instance)  # what a killed daemon of this account left
        setting = os.environ.get(TRACKING_ENV) or setting
        try:
            choice = choose_tracking(setting, probe)
        except TrackingUnavailableError as error:
            log.warning("%s; falling back to the process tree", error.message)
            choice = TrackingChoice(TrackingKind.PROCESS_TREE, f"the process tree ({error.message})")
        become_subreaper()
        return cls(home, open_tracker(choice, probe, instance), open_confiner(probe, instance), choice, probe, instance)

    def describe(self) -> dict[str, str]:
        """What `runai-adm local status` shows: the tracking and the device confinement."""
        state, why = self.confiner.summary
        return {"process_tracking": self.choice.kind.value, "process_tracking_reason": self.choice.reason,
                "device_confinement": f"{state.value}: {why}"}

    def _files(self, job_id: str, number: int) -> AttemptFiles:
        return AttemptFiles(self.home, job_id, number)

    def launch(self, job_id: str, number: int, argv: Sequence[str], env: Mapping[str, str], cwd: str | None,
               run_as: RunAs | None = None, devices: JobDevices | None = None, header: str | None = None) -> Launched:
        """Start attempt `number` of the job, its output after the log line `header` when given.
        Raises OSError when it cannot."""
        files = self._files(job_id, number)
        self.tracker.cleanup(files)  # what a launch that died half-way left
        join, confinement, note = self.confiner.prepare(files, devices or JobDevices())
        log_fd = self._open_log(job_id, run_as)
        try:
            if header is not None:
                append_line_once(self.home.job_log(job_id), header)
            child = self.tracker.start(files, argv, env, cwd, log_fd, run_as=run_as, join=join)
        finally:
            os.close(log_fd)
        self.children[files.name] = child
        return Launched(child.pid, confinement, note)

    def _open_log(self, job_id: str, run_as: RunAs | None) -> int:
        """The job's log, appended to; it belongs to the job's account."""
        fd = open_private(self.home.job_log(job_id))
        if run_as is not None and os.geteuid() == 0 and os.fstat(fd).st_uid != run_as.uid:
            os.fchown(fd, run_as.uid, run_as.gid)
        return fd

    def launch_failed(self, job_id: str, number: int, message: str, code: int) -> None:
        """Record that the attempt could not start, so that supervision settles it with `code`."""
        log_fd = open_private(self.home.job_log(job_id))
        try:
            os.write(log_fd, f"runai-lite: {message}\n".encode())
        finally:
            os.close(log_fd)
        write_private(self._files(job_id, number).exitfile, f'{{"code": {code}, "signal": null}}')

    def state(self, job_id: str, number: int) -> tuple[AttemptState, int | None]:
        """`running`; `draining` (its main process ended with the code, processes it started are
        left); `exited` with its code once nothing is left; `absent` (no process ever got going)."""
        files = self._files(job_id, number)
        status = self.tracker.status(files)
        if status.phase is Phase.EXITED and status.code is None:  # the shim was killed: did we inherit the job?
            self.reap()
            status = self.tracker.status(files)
        child = self.children.get(files.name)
        if status.phase is Phase.ABSENT and child is not None and child.poll() is None:
            return "running", None  # our shim has not taken its lock yet
        inherited = self.orphan_exits.get(files.name)
        if status.code is None and inherited is not None and status.phase in (Phase.EXITED, Phase.DRAINING):
            return status.phase.value, inherited["code"]  # type: ignore[return-value]
        return status.phase.value, status.code  # type: ignore[return-value]

    def exit_note(self, job_id: str, number: int) -> str | None:
        """What the history should say about how the end was recorded, when not the usual way."""
        files = self._files(job_id, number)
        record = files.exit_record() or self.orphan_exits.get(files.name) or {}
        if record.get("recorded_by"):
            return (f"its supervisor was killed while the job went on; the daemon waited for the job itself "
                    f"(exit code {record.get('code')})")
        if record.get("late_seconds"):
            return (f"its exit code ({record.get('code')}) could be written only {record['late_seconds']:g} s after "
                    "it ended (the disk was full); recorded once space returned")
        return None

    def pid(self, job_id: str, number: int) -> int | None:
        return self._files(job_id, number).pid()

    def _starting(self, files: AttemptFiles) -> subprocess.Popen | None:
        """Our shim for the attempt while it runs: in its first moments it has neither joined its
        cgroup nor taken its lock, and only this daemon knows it."""
        child = self.children.get(files.name)
        return child if child is not None and child.poll() is None else None

    def alive(self, job_id: str, number: int) -> bool:
        """True while any process of the attempt is left (so may still use its devices)."""
        files = self._files(job_id, number)
        return self.tracker.alive(files) or self._starting(files) is not None

    def signal(self, job_id: str, number: int, signum: int) -> bool:
        """Signal every process of the attempt; False when none is left."""
        files = self._files(job_id, number)
        sent = self.tracker.signal(files, signum)
        return _signal_shim(self._starting(files), signum) or sent

    def kill(self, job_id: str, number: int) -> list[int]:
        """SIGKILL all of the attempt; the pids found besides its shim."""
        files = self._files(job_id, number)
        found = self.tracker.kill(files)
        _signal_shim(self._starting(files), signal.SIGKILL)
        return found

    def freeze(self, job_id: str, number: int) -> None:
        self.tracker.freeze(self._files(job_id, number))

    def thaw(self, job_id: str, number: int) -> None:
        self.tracker.thaw(self._files(job_id, number))

    def forget(self, job_id: str, number: int) -> None:
        """The attempt is settled: drop its files and cgroups."""
        files = self._files(job_id, number)
        child = self.children.pop(files.name, None)
        if child is not None and child.poll() is None:
            self.exiting.append(child)  # reaped by a later cycle
        self.orphan_exits.pop(files.name, None)
        self.tracker.cleanup(files)
        self.confiner.cleanup(files)

    def reap(self) -> None:
        """Collect every child that ended (shims, and jobs whose shim was killed), so that no
        zombie is left and no inherited job's status is lost."""
        while True:
            try:
                ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                break
            if ended is None or ended.si_pid == 0:
                break
            self._inherited_end(ended)
        self.exiting = [child for child in self.exiting if child.poll() is None]
        for name, record in list(self.orphan_exits.items()):
            self._write_exit(name, record)

    def _inherited_end(self, ended: os.waitid_result) -> None:
        """A job whose shim was killed has ended: its status, for the attempt it belongs to."""
        for childfile in self.home.run.glob("*.child"):
            try:
                if int(childfile.read_text()) != ended.si_pid:
                    continue
            except (OSError, ValueError):
                continue
            killed = ended.si_code in (os.CLD_KILLED, os.CLD_DUMPED)
            record = {"code": 128 + ended.si_status if killed else ended.si_status,
                      "signal": ended.si_status if killed else None, "recorded_by": "daemon"}
            name = childfile.name[:-len(".child")]
            log.warning("attempt %s: its supervisor was killed; the job ended with exit code %d", name, record["code"])
            self.orphan_exits[name] = record
            return

    def _write_exit(self, name: str, record: dict) -> None:
        job_id, number = name.rsplit(".", 1)
        files = self._files(job_id, int(number))
        if files.exit_code() is not None:
            return
        try:
            write_private(files.exitfile, json.dumps(record))
        except OSError as error:  # a full disk: kept in memory, written at a later cycle
            log.warning("attempt %s: cannot record its exit yet: %s", name, error)

    def close(self) -> None:
        """The daemon stops: its empty cgroup directories go (those of running attempts stay)."""
        if self.probe is not None:
            release(self.probe, self.instance)


def _signal_shim(child: subprocess.Popen | None, signum: int) -> bool:
    """A shim that has not set its handlers yet ends on SIGTERM before it starts the job: the
    stop is not lost. Once they are set, it ignores the signal and the job's processes get it."""
    if child is None:
        return False
    try:
        child.send_signal(signum)
    except ProcessLookupError:
        return False
    return True


PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> None:
    """Orphans among this process's descendants (a job whose shim was killed) become its children."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        log.warning("cannot become the child subreaper: %s", os.strerror(ctypes.get_errno()))
