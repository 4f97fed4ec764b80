"""What this machine has for jobs besides GPUs: the CPUs this process may run on and its memory.

The embedded node's capacity unless an administrator declared other figures (`runai-adm local init
--node-cpus/--node-memory`, the `nodes` table), as a simulated machine may.
"""

from __future__ import annotations

import os
from pathlib import Path

MEMINFO = Path("/proc/meminfo")


def cpu_milli() -> int:
    """The CPUs this process may use (its affinity mask, as `nproc` counts them), in millicores."""
    try:
        return len(os.sched_getaffinity(0)) * 1000
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return (os.cpu_count() or 1) * 1000


def memory_mib(meminfo: Path = MEMINFO) -> int | None:
    """`MemTotal` in MiB, or None when it cannot be read (then memory is not scheduled)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
