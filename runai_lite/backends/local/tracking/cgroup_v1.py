"""cgroup v1 tracking, where no v2 hierarchy can be used: the attempt's cgroup in the `pids`
hierarchy holds its processes (children stay in their parent's cgroup, whatever they do), the
`freezer` hierarchy freezes them. v1 has no `cgroup.kill`: killing freezes the cgroup first, so
nothing forks between the look and the kill, then SIGKILLs every member and thaws it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from ..paths import lock_held
from . import cgroup
from .files import AttemptFiles
from .protocol import ShimTracker, TrackingKind


class CgroupV1Tracker(ShimTracker):
    kind = TrackingKind.CGROUP_V1

    def __init__(self, pids_mount: Path, freezer_mount: Path, instance: str):
        self.pids_root = cgroup.instance_dir(pids_mount, instance)
        self.freezer_root = cgroup.instance_dir(freezer_mount, instance)

    def _pids(self, files: AttemptFiles) -> Path:
        return self.pids_root / files.name

    def _freezer(self, files: AttemptFiles) -> Path:
        return self.freezer_root / files.name

    def cgroups(self, files: AttemptFiles) -> list[Path]:
        return [self._pids(files), self._freezer(files)]

    def prepare(self, files: AttemptFiles) -> None:
        for directory in self.cgroups(files):
            cgroup.make(directory)

    def alive(self, files: AttemptFiles) -> bool:
        return bool(cgroup.procs(self._pids(files))) or lock_held(files.lock)

    def signal(self, files: AttemptFiles, signum: int) -> bool:
        return cgroup.signal_all(self._pids(files), signum)

    def kill(self, files: AttemptFiles) -> list[int]:
        found: set[int] = set()
        for _ in range(50):
            members = cgroup.procs(self._pids(files))
            if not members:
                break
            found |= set(members)
            self.freeze(files)
            cgroup.signal_all(self._pids(files), signal.SIGKILL)
            self.thaw(files)
            time.sleep(0.01)
        return sorted(found - {files.pid()})

    def freeze(self, files: AttemptFiles) -> None:
        directory = self._freezer(files)
        if not directory.exists():
            return
        cgroup.write(directory, "freezer.state", "FROZEN")
        for _ in range(100):  # FREEZING until every task has stopped
            if (directory / "freezer.state").read_text().strip() != "FREEZING":
                return
            time.sleep(0.005)

    def thaw(self, files: AttemptFiles) -> None:
        directory = self._freezer(files)
        if directory.exists():
            cgroup.write(directory, "freezer.state", "THAWED")

    def cleanup(self, files: AttemptFiles) -> None:
        for directory in self.cgroups(files):
            cgroup.remove(directory)
        files.remove()
