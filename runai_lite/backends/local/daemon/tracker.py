"""The daemon's one window onto job processes: launching an attempt, reading whether it runs or how
it ended, signalling it, and forgetting it. Units never touch pids, lock files or exit files
themselves, so a different way of tracking processes (cgroups) replaces `ShimTracker` alone.

`ShimTracker` is the process-tree variant: each attempt runs under `shim.py` in its own session,
alive while the attempt's lock is held, its end recorded in the attempt's exit file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Literal, Protocol

from ..paths import Home, open_private, write_private
from ..runner import Attempt, signal_group

AttemptState = Literal["running", "exited", "absent"]


class ProcessTracker(Protocol):
    def launch(self, job_id: str, number: int, argv: list[str], env: Mapping[str, str], cwd: str | None) -> int:
        """Start attempt `number` of the job; the pid whose process group is the job. Raises OSError."""

    def launch_failed(self, job_id: str, number: int, message: str, code: int) -> None:
        """Record that the attempt could not start, so that supervision settles it with `code`."""

    def state(self, job_id: str, number: int) -> tuple[AttemptState, int | None]:
        """`exited` with its code, `running`, or `absent` (no process ever got going)."""

    def pid(self, job_id: str, number: int) -> int | None: ...

    def alive(self, job_id: str, number: int) -> bool:
        """True while any process of the attempt may still use its devices."""

    def signal(self, pid: int, signum: int) -> bool:
        """Signal the attempt whose group leader is `pid`; False when it is gone."""

    def forget(self, job_id: str, number: int) -> None:
        """The attempt is settled: drop what was kept to track it."""

    def reap(self) -> None:
        """Collect supervisors that ended, so that no zombie is left."""


class ShimTracker:
    def __init__(self, home: Home):
        self.home = home
        self.children: dict[str, subprocess.Popen] = {}  # attempt lock path -> shim we started
        self.exiting: list[subprocess.Popen] = []  # shims that recorded their end but had not exited yet

    def _attempt(self, job_id: str, number: int) -> Attempt:
        return Attempt(self.home, job_id, number)

    def launch(self, job_id: str, number: int, argv: list[str], env: Mapping[str, str], cwd: str | None) -> int:
        attempt = self._attempt(job_id, number)
        attempt.cleanup()
        child = attempt.launch(argv, env, cwd)
        self.children[str(attempt.lock)] = child
        return child.pid

    def launch_failed(self, job_id: str, number: int, message: str, code: int) -> None:
        log_fd = open_private(self.home.job_log(job_id))
        try:
            os.write(log_fd, f"runai-lite: {message}\n".encode())
        finally:
            os.close(log_fd)
        write_private(self._attempt(job_id, number).exitfile, f'{{"code": {code}, "signal": null}}')

    def state(self, job_id: str, number: int) -> tuple[AttemptState, int | None]:
        attempt = self._attempt(job_id, number)
        state, code = attempt.state()
        child = self.children.get(str(attempt.lock))
        if state == "absent" and child is not None and child.poll() is None:
            return "running", None  # our shim has not taken its lock yet
        return state, code

    def pid(self, job_id: str, number: int) -> int | None:
        return self._attempt(job_id, number).pid()

    def alive(self, job_id: str, number: int) -> bool:
        return self._attempt(job_id, number).alive()

    def signal(self, pid: int, signum: int) -> bool:
        return signal_group(pid, signum)

    def forget(self, job_id: str, number: int) -> None:
        attempt = self._attempt(job_id, number)
        child = self.children.pop(str(attempt.lock), None)
        if child is not None and child.poll() is None:
            self.exiting.append(child)  # reaped by a later cycle
        attempt.cleanup()

    def reap(self) -> None:
        self.exiting = [child for child in self.exiting if child.poll() is None]
