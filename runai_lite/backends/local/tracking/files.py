"""The files of one job attempt, whatever tracks its processes: the lock the shim holds while the
attempt's processes live, the pid file the shim writes once it runs, and the exit file it writes
when the job's main process ends (so the status survives a daemon that was down at the time)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..paths import Home


@dataclass(frozen=True)
class AttemptFiles:
    """Where one attempt of one job keeps its supervision files (`Home.run`)."""

    home: Home
    job_id: str
    number: int

    @property
    def name(self) -> str:
        """`JOB.N`: unique per attempt, and the name of its cgroups."""
        return f"{self.job_id}.{self.number}"

    @property
    def lock(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "lock")

    @property
    def pidfile(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "pid")

    @property
    def exitfile(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "exit")

    @property
    def childfile(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "child")

    def child_pid(self) -> int | None:
        """The job's main process, once the shim started it."""
        try:
            return int(self.childfile.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def exit_record(self) -> dict | None:
        """The exit file as written: `code`, `signal`, and `late_seconds` when the disk was full, or
        `recorded_by` when not the shim."""
        try:
            record = json.loads(self.exitfile.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return record if isinstance(record, dict) else None

    def pid(self) -> int | None:
        """The shim's pid (its process group's id), once it has started."""
        try:
            return int(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def exit_code(self) -> int | None:
        try:
            return int(json.loads(self.exitfile.read_text())["code"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def remove(self) -> None:
        for path in (self.lock, self.pidfile, self.exitfile, self.childfile,
                     *self.exitfile.parent.glob(f"{self.exitfile.name}.*.tmp")):  # a write a full disk stopped
            path.unlink(missing_ok=True)
