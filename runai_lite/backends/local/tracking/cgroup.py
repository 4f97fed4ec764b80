"""Reading and writing cgroup files, for both hierarchies: the few operations the cgroup trackers
and device confinement need, each a small function over a directory path."""

from __future__ import annotations

import errno
import time
from pathlib import Path

from .shim import signal_each

BASE = "runai-lite"  # every runai-lite cgroup lives under <mount>/runai-lite/<instance>/


def instance_dir(mount: Path, instance: str) -> Path:
    return mount / BASE / instance


def make(directory: Path) -> None:
    """Create the cgroup (and its parents); an existing one is fine."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)


def procs(directory: Path) -> list[int]:
    """Pids in the cgroup itself (`cgroup.procs`); none when it does not exist."""
    try:
        return [int(line) for line in (directory / "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def write(directory: Path, name: str, value: str) -> None:
    with open(directory / name, "w") as handle:
        handle.write(value)


def remove(directory: Path, timeout: float = 1.0) -> bool:
    """rmdir the cgroup once its last process is gone (the kernel refuses while one is left, and
    for a moment after); True when it no longer exists."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            directory.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
        time.sleep(0.01)


def signal_all(directory: Path, signum: int) -> bool:
    return signal_each(procs(directory), signum)
