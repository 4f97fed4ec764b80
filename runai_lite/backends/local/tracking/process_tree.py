"""Process-tree tracking, the fallback where no cgroup can be created (a personal daemon run by a
user, a container without a writable cgroup mount).

The attempt's processes are the shim's process group plus every process holding the attempt's
lock file open (the shim passes its locked descriptor to the job, and children inherit it, so a
`setsid` grandchild is still found). Liveness is the lock itself, not a pid that could be reused.
What this cannot see: a process that closes the inherited descriptor *and* leaves the process group
(a daemonising tool does both). The cgroup variants have no such hole.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ..paths import lock_held
from .files import AttemptFiles
from .protocol import ShimTracker, TrackingKind
from .shim import group_members, signal_each


def lock_holders(lock: Path, proc: str = "/proc") -> list[int]:
    """Pids of processes with `lock` open (readable in /proc: ours, or any when root)."""
    target = str(lock)
    holders = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            fds = os.listdir(f"{proc}/{name}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"{proc}/{name}/fd/{fd}") == target:
                    holders.append(int(name))
                    break
            except OSError:
                continue
    return holders


class ProcessTreeTracker(ShimTracker):
    kind = TrackingKind.PROCESS_TREE

    def __init__(self, proc: str = "/proc"):
        self.proc = proc

    def alive(self, files: AttemptFiles) -> bool:
        return lock_held(files.lock)

    def _members(self, files: AttemptFiles) -> set[int]:
        shim = files.pid()
        members = set(group_members(self.proc, shim)) if shim is not None else set()
        return members | set(lock_holders(files.lock, self.proc))

    def signal(self, files: AttemptFiles, signum: int) -> bool:
        return signal_each(self._members(files), signum)

    def kill(self, files: AttemptFiles) -> list[int]:
        shim = files.pid()
        found: set[int] = set()
        for _ in range(50):  # a process may fork while we look: look again until nothing is left
            members = self._members(files)
            if not members:
                break
            found |= members
            signal_each(members, signal.SIGKILL)
            time.sleep(0.01)
        return sorted(found - {shim})

    def freeze(self, files: AttemptFiles) -> None:
        self.signal(files, signal.SIGSTOP)

    def thaw(self, files: AttemptFiles) -> None:
        self.signal(files, signal.SIGCONT)

    def cleanup(self, files: AttemptFiles) -> None:
        files.remove()
