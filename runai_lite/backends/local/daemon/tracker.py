"""The daemon's one window onto job processes: the units speak of (job id, attempt number) and
never touch pids, lock files, exit files or cgroups themselves.

`AttemptProcesses` adapts a `tracking.ProcessTracker`, chosen once at start from a probe of the
machine (cgroup v2, cgroup v1 or the process tree), and the device confiner: it opens the job's
log (owned by the job's account), starts attempts, reads their state, signals and kills them, and
keeps the shims it started until they are reaped. What was chosen, and why, is written to the
store's config for `runai-adm local status`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

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
        return cls(home, open_tracker(choice, probe, instance), open_confiner(probe, instance), choice, probe, instance)

    def describe(self) -> dict[str, str]:
        """What `runai-adm local status` shows: the tracking and the device confinement."""
        state, why = self.confiner.summary
        return {"process_tracking": self.choice.kind.value, "process_tracking_reason": self.choice.reason,
                "device_confinement": f"{state.value}: {why}"}

    def _files(self, job_id: str, number: int) -> AttemptFiles:
        return AttemptFiles(self.home, job_id, number)

    def launch(self, job_id: str, number: int, argv: Sequence[str], env: Mapping[str, str], cwd: str | None,
               run_as: RunAs | None = None, devices: JobDevices | None = None) -> Launched:
        """Start attempt `number` of the job. Raises OSError when it cannot."""
        files = self._files(job_id, number)
        self.tracker.cleanup(files)  # what a launch that died half-way left
        join, confinement, note = self.confiner.prepare(files, devices or JobDevices())
        log_fd = self._open_log(job_id, run_as)
        try:
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
        child = self.children.get(files.name)
        if status.phase is Phase.ABSENT and child is not None and child.poll() is None:
            return "running", None  # our shim has not taken its lock yet
        return status.phase.value, status.code  # type: ignore[return-value]

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
        self.tracker.cleanup(files)
        self.confiner.cleanup(files)

    def reap(self) -> None:
        """Collect shims that ended, so that no zombie is left."""
        self.exiting = [child for child in self.exiting if child.poll() is None]

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
