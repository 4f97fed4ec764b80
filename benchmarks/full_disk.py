"""A home on a small tmpfs, filled to the last block: how the crash harness and the tests make the
embedded mode meet a full disk (root only: mounting needs it)."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path


def mount_small_tmpfs(path: Path, size: str) -> bool:
    """Mount a tmpfs of `size` (for example "8m") on the existing directory `path`; False when the
    kernel refuses (not root, or no mount here)."""
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          check=False).returncode == 0


def unmount(path: Path) -> None:
    # lazy: a job process still holding a file there must not keep the test from cleaning up
    subprocess.run(["umount", "-l", str(path)], check=False)


def fill_until_full(path: Path) -> None:
    """Write zeros to `path` until its file system has no room left (what a runaway job does)."""
    # Unbuffered: a buffered writer keeps what a short write left over and fails again on close.
    try:
        filler = path.open("wb", buffering=0)
    except OSError as error:
        if error.errno == errno.ENOSPC:  # already full: the job's own writes got there first
            return
        raise
    with filler:
        try:
            while True:
                filler.write(b"\0" * 65536)
        except OSError:
            pass
