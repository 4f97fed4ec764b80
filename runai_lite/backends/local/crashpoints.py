"""Named crash points in the daemon's apply path, for the crash-safety harness.

`RUNAI_LITE_CRASH_AT=POINT[:N]` makes the daemon SIGKILL itself the N-th time (default: the first)
it passes POINT, so a test can stop it at an exact step boundary of applying a plan and check that
a fresh daemon carries on from there. Unset, a crash point costs one dictionary lookup.

With `RUNAI_LITE_CRASH_MARK=PATH` as well, the crash happens once across daemons: the dying one
writes its pid to PATH, and a daemon that finds PATH is not armed (so the restart a command makes carries on).

SIGKILL rather than `sys.exit`: no `finally`, no atexit, no flush. That is what a power cut or the
OOM killer does, and the only honest test of "every step reads its work from the store".
"""

from __future__ import annotations

import os
import signal
import sys

CRASH_ENV = "RUNAI_LITE_CRASH_AT"
MARK_ENV = "RUNAI_LITE_CRASH_MARK"

# Each point sits right after an effect and before the next record of it (see the units in daemon/).
POINTS: dict[str, str] = {
    "plan-recorded": "a plan's intents are committed; nothing has been done about them yet",
    "mig-reconciled": "partitions were created or destroyed on the GPU; the store does not know yet",
    "mig-recorded": "the store knows the partitions that now exist; no job was started on them yet",
    "start-recorded": "a job is recorded Running; its process was not launched",
    "process-launched": "a job's process runs; its pid is not recorded and its device not registered",
    "stop-signalled": "a preempted or deleted job was sent SIGTERM; that was not recorded",
    "settled": "an ended attempt was settled in the store; its device was not unregistered",
}


def parse(spec: str | None) -> tuple[str, int] | None:
    """`POINT[:N]` → (POINT, N); None when unset. A bad spec is a harness bug: fail loudly."""
    if not spec:
        return None
    point, _, count = spec.partition(":")
    if point not in POINTS:
        raise ValueError(f"{CRASH_ENV}={spec}: unknown crash point {point!r} (known: {', '.join(POINTS)})")
    if count and (not count.isdigit() or int(count) < 1):
        raise ValueError(f"{CRASH_ENV}={spec}: N must be a whole number from 1 up")
    return point, int(count or 1)


_mark = os.environ.get(MARK_ENV)
_armed = None if _mark and os.path.exists(_mark) else parse(os.environ.get(CRASH_ENV))
_passed: dict[str, int] = {}


def crash_point(point: str) -> None:
    """Die here by SIGKILL when armed for this point and this is the N-th pass."""
    if _armed is None or _armed[0] != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] == _armed[1]:
        # One line for the harness to tell "killed here" from "died of something else".
        sys.stderr.write(f"runai-lite crash point {point}:{_armed[1]} reached: SIGKILL\n")
        sys.stderr.flush()
        if _mark:  # names the dying daemon, so that a harness can wait for it to be gone
            fd = os.open(_mark, os.O_WRONLY | os.O_CREAT, 0o600)
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)
