"""cgroup v2 tracking: each attempt in its own cgroup `<mount>/runai-lite/<instance>/<job>.<n>`.

The shim moves itself into the cgroup before it starts the job, so the job and everything it ever
starts (`setsid`, double forks, daemons) are in it: the attempt is alive while `cgroup.events` says
`populated 1`, `cgroup.kill` kills all of it at once (the kernel loops over new forks), and
`cgroup.freeze` freezes it. No controller is enabled, so the cgroup costs nothing but its directory.
"""

from __future__ import annotations

import signal
from pathlib import Path

from ..paths import lock_held
from . import cgroup
from .files import AttemptFiles
from .protocol import ShimTracker, TrackingKind


class CgroupV2Tracker(ShimTracker):
    kind = TrackingKind.CGROUP_V2

    def __init__(self, mount: Path, instance: str):
        self.root = cgroup.instance_dir(mount, instance)

    def directory(self, files: AttemptFiles) -> Path:
        return self.root / files.name

    def cgroups(self, files: AttemptFiles) -> list[Path]:
        return [self.directory(files)]

    def prepare(self, files: AttemptFiles) -> None:
        cgroup.make(self.directory(files))

    def alive(self, files: AttemptFiles) -> bool:
        # the lock too: an attempt started by a daemon that tracked it otherwise has no cgroup
        return _populated(self.directory(files)) or lock_held(files.lock)

    def signal(self, files: AttemptFiles, signum: int) -> bool:
        return cgroup.signal_all(self.directory(files), signum)

    def kill(self, files: AttemptFiles) -> list[int]:
        directory = self.directory(files)
        found = cgroup.procs(directory)
        if not found:
            return []
        try:
            cgroup.write(directory, "cgroup.kill", "1")
        except FileNotFoundError:
            return []
        except OSError:  # a kernel before 5.14 has no cgroup.kill: freeze, then kill each
            self.freeze(files)
            cgroup.signal_all(directory, signal.SIGKILL)
            self.thaw(files)
        return sorted(set(found) - {files.pid()})

    def freeze(self, files: AttemptFiles) -> None:
        cgroup.write(self.directory(files), "cgroup.freeze", "1")

    def thaw(self, files: AttemptFiles) -> None:
        cgroup.write(self.directory(files), "cgroup.freeze", "0")

    def cleanup(self, files: AttemptFiles) -> None:
        cgroup.remove(self.directory(files))
        files.remove()


def _populated(directory: Path) -> bool:
    try:
        text = (directory / "cgroup.events").read_text()
    except FileNotFoundError:
        return False
    return "populated 1" in text.splitlines()
