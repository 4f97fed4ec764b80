"""One owner per GPU on a machine: a daemon that drives real GPUs holds a machine-wide `flock` per
GPU UUID, so a second daemon (another user's personal one) leaves those GPUs alone instead of
allocating them twice.

The locks are files `<dir>/<uuid>.lock` in `/run/lock/runai-lite` (`$RUNAI_LITE_GPU_LOCK_DIR` in
tests), a sticky, world-writable directory as `/run/lock` itself is, so every user's daemon can take
a lock. A lock is held for the daemon's lifetime on a close-on-exec descriptor (jobs never inherit
it) and vanishes with the process, however it ends. The holder writes its pid and home into the
file; its uid is the file's owner, which the kernel vouches for. Simulated GPUs are never locked:
they exist only in their own home.

Cooperative between daemons: a process that uses a GPU without any daemon is not stopped, and
any user can hold a lock file to keep daemons off a GPU (as any user can run CUDA on it).
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR_ENV = "RUNAI_LITE_GPU_LOCK_DIR"
DEFAULT_LOCK_DIR = Path("/run/lock/runai-lite")
SYSTEM_MODE_HINT = "use the system mode: runai-adm local init --system"


@dataclass(frozen=True)
class Owner:
    """Who holds a GPU's lock (as far as its file says)."""

    uid: int
    pid: int | None
    home: str

    def why(self, uuid: str) -> str:
        pid = f" (pid {self.pid})" if self.pid is not None else ""
        return f"{uuid} is owned by the daemon of uid {self.uid}{pid}; {SYSTEM_MODE_HINT}"


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or DEFAULT_LOCK_DIR)


def _ensure_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True)
    except FileExistsError:
        return
    os.chmod(directory, 0o1777)  # as /run/lock: anyone may create a lock, only its owner remove it


class GpuLocks:
    """The GPU locks this daemon holds, taken and kept with `claim`."""

    def __init__(self, home: str, directory: Path | None = None):
        self.home = home
        self.directory = directory or lock_dir()
        self.held: dict[str, int] = {}  # uuid -> the locked descriptor

    def claim(self, uuids: Iterable[str]) -> dict[str, Owner]:
        """Take the lock of every GPU in `uuids` not held yet; the GPUs another daemon owns, with
        their owner. GPUs gone from `uuids` are let go."""
        wanted = set(uuids)
        for uuid in set(self.held) - wanted:
            os.close(self.held.pop(uuid))
        foreign: dict[str, Owner] = {}
        for uuid in sorted(wanted - set(self.held)):
            owner = self._take(uuid)
            if owner is not None:
                foreign[uuid] = owner
        return foreign

    def _take(self, uuid: str) -> Owner | None:
        _ensure_dir(self.directory)
        path = self.directory / f"{uuid}.lock"
        try:  # O_NOFOLLOW: a planted symlink must not make us open (and write) another file
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except PermissionError:  # another user's file in a sticky directory: open it to look
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                os.close(fd)
                raise
            owner = _read_owner(fd)
            os.close(fd)
            return owner
        if os.fstat(fd).st_uid == os.geteuid():  # the file is ours to say who holds it
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.home}\n".encode(), 0)
        self.held[uuid] = fd
        return None

    def release(self) -> None:
        for fd in self.held.values():
            os.close(fd)
        self.held.clear()


def _read_owner(fd: int) -> Owner:
    uid = os.fstat(fd).st_uid
    words = os.pread(fd, 4096, 0).decode(errors="replace").split(maxsplit=1)
    pid = int(words[0]) if words and words[0].isdigit() else None
    return Owner(uid=uid, pid=pid, home=words[1].strip() if len(words) > 1 else "")
