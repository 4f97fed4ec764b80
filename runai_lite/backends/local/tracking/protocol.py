"""The contract between supervision and whatever tracks a job attempt's processes.

`ProcessTracker` is all supervision may call. Every variant runs the attempt under the shim
(`shim.py`) and shares its files (`files.AttemptFiles`); a variant differs in where the attempt's
processes are kept (a cgroup, or the shim's process group and lock) and so in how completely it can
see, signal and kill them.

An attempt is `RUNNING` while its main process runs, `DRAINING` when the main process has ended
(the exit file is written) but processes it started are still there, `EXITED` when none is left,
and `ABSENT` when no shim ever got going (a launch recorded but never made). An attempt whose shim
was killed before it wrote the exit file is `EXITED` without a code: the tracker does not know how
the job ended, and does not invent it (the daemon, the shim's child subreaper, records what it can). Only `EXITED` frees the
attempt's GPU: supervision kills a draining attempt and waits.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from .files import AttemptFiles

SHIM = Path(__file__).with_name("shim.py")
KILLED_EXIT_CODE = 128 + signal.SIGKILL


class TrackingKind(str, Enum):
    CGROUP_V2 = "cgroup-v2"
    CGROUP_V1 = "cgroup-v1"
    PROCESS_TREE = "process-tree"


class Phase(str, Enum):
    RUNNING = "running"
    DRAINING = "draining"
    EXITED = "exited"
    ABSENT = "absent"


@dataclass(frozen=True)
class AttemptStatus:
    phase: Phase
    code: int | None = None  # the main process's exit status, once known; EXITED without one: unknown


@dataclass(frozen=True)
class RunAs:
    """The account and umask a job runs with. The shim switches to the account only when the
    daemon is root; a daemon running as a user can only run jobs as that user."""

    uid: int
    gid: int
    groups: tuple[int, ...] = ()
    umask: int = 0o022

    def shim_options(self, daemon_euid: int) -> list[str]:
        options = ["--umask", f"{self.umask:o}"]
        if daemon_euid == 0:
            options += ["--uid", str(self.uid), "--gid", str(self.gid),
                        "--groups", ",".join(map(str, self.groups))]
        return options


class ProcessTracker(Protocol):
    kind: TrackingKind

    def start(self, files: AttemptFiles, argv: Sequence[str], env: Mapping[str, str], cwd: str | None,
              log_fd: int, run_as: RunAs | None = None, join: Sequence[Path] = ()) -> subprocess.Popen:
        """Start the attempt's shim (which starts the job) with its output on `log_fd`; `join`
        names more cgroups its processes must be in (device confinement)."""

    def status(self, files: AttemptFiles) -> AttemptStatus: ...

    def alive(self, files: AttemptFiles) -> bool:
        """True while any process of the attempt is left (the shim included)."""

    def signal(self, files: AttemptFiles, signum: int) -> bool:
        """Send `signum` to every process of the attempt; False when none is left."""

    def kill(self, files: AttemptFiles) -> list[int]:
        """SIGKILL every process of the attempt; the pids it found besides the shim."""

    def freeze(self, files: AttemptFiles) -> None: ...

    def thaw(self, files: AttemptFiles) -> None: ...

    def cleanup(self, files: AttemptFiles) -> None:
        """Forget the attempt: its files, and its cgroup once empty."""


class ShimTracker:
    """What every variant shares: the shim's launch and the status read from the exit file and
    the variant's `alive`."""

    kind: TrackingKind

    def cgroups(self, files: AttemptFiles) -> list[Path]:
        """The cgroups the attempt's processes live in (none for the process tree)."""
        return []

    def prepare(self, files: AttemptFiles) -> None:
        """Create what the attempt needs before its shim starts."""

    def start(self, files: AttemptFiles, argv: Sequence[str], env: Mapping[str, str], cwd: str | None,
              log_fd: int, run_as: RunAs | None = None, join: Sequence[Path] = ()) -> subprocess.Popen:
        self.prepare(files)
        options: list[str] = []
        for directory in (*self.cgroups(files), *join):
            options += ["--cgroup", str(directory)]
        if run_as is not None:
            options += run_as.shim_options(os.geteuid())
        return subprocess.Popen(
            [sys.executable, "-I", "-S", str(SHIM), *options, "--childfile", str(files.childfile), str(files.lock),
             str(files.pidfile),
             str(files.exitfile), cwd or "", "--", *argv],
            env=dict(env), stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )

    def alive(self, files: AttemptFiles) -> bool:
        raise NotImplementedError

    def status(self, files: AttemptFiles) -> AttemptStatus:
        code = files.exit_code()
        if self.alive(files):
            return AttemptStatus(Phase.DRAINING, code) if code is not None else AttemptStatus(Phase.RUNNING)
        code = files.exit_code() if code is None else code  # it may have ended between the two looks
        if code is not None:
            return AttemptStatus(Phase.EXITED, code)
        if files.pidfile.exists():  # the shim ran and was killed before it could write the exit:
            return AttemptStatus(Phase.EXITED)  # how the job ended is not known here (never invented)
        return AttemptStatus(Phase.ABSENT)
