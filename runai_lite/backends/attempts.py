"""A job's attempts, as both backends record them: how each one ended, the line that separates one
attempt's output from the next in `runai logs`, and finding one attempt's output among the lines.

An attempt is one run of the job's command: the first, then one per retry after a failure, per
requeue after a preemption and per resume after a suspension. Its output goes to the job's one
log; before the output of attempt N > 1 the log gets the line `--- attempt N (why) ---`, where
"why" says how attempt N - 1 ended (`exit code 3`, `preempted`, `suspended, then resumed`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

SEPARATOR = re.compile(r"^--- attempt (\d+) \((.*)\) ---$")
# Exit codes that say the command could not be run at all (a shell's and a container runtime's
# convention, which the embedded shim follows when it cannot exec the command): never retried.
NOT_RUNNABLE = {126: "the command could not be executed (not executable, or permission denied)",
                127: "the command was not found"}


class AttemptEnd(StrEnum):
    """How an attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a non-zero exit code, or the command could not be started
    PREEMPTED = "preempted"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    UNKNOWN = "unknown"  # nobody could wait for it (the daemon restarted while its supervisor was killed)


class Attempt(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    outcome: AttemptEnd | None = None  # None: still running

    @property
    def reason(self) -> str:
        """How it ended, in a few words."""
        if self.outcome is None:
            return "running"
        code = "" if self.exit_code is None else f" (exit code {self.exit_code})"
        return {
            AttemptEnd.SUCCEEDED: "exit code 0",
            AttemptEnd.FAILED: f"exit code {self.exit_code}" if self.exit_code is not None else "failed",
            AttemptEnd.PREEMPTED: "preempted" + code,
            AttemptEnd.SUSPENDED: "suspended" + code,
            AttemptEnd.DELETED: "deleted" + code,
            AttemptEnd.UNKNOWN: "ended, how is not known",
        }[self.outcome]


def separator(number: int, previous: Attempt | None, why: str | None = None) -> str:
    """The log line before attempt `number`'s output, saying why the attempt before it ended (or
    `why` there is nothing to say about it)."""
    if why is not None:
        pass
    elif previous is None or previous.outcome is None:
        why = "restarted"
    elif previous.outcome is AttemptEnd.PREEMPTED:
        why = "preempted"
    elif previous.outcome is AttemptEnd.SUSPENDED:
        why = "suspended, then resumed"
    else:
        why = previous.reason
    return f"--- attempt {number} ({why}) ---"


def attempt_lines(lines: Iterable[str], number: int) -> Iterator[str]:
    """The lines of attempt `number` from a job's whole log: those after its separator (from the
    start for attempt 1) up to the next attempt's separator. A separator counts only when it
    names a later attempt than the one being read (one trimmed out of a long log leaves a gap)."""
    current = 1
    for line in lines:
        found = SEPARATOR.match(line)
        if found and int(found.group(1)) > current:
            current = int(found.group(1))
            if current > number:
                return
            continue
        if current == number:
            yield line


def counts(attempts: Iterable[Attempt]) -> dict[AttemptEnd, int]:
    """How many attempts ended each way."""
    found: dict[AttemptEnd, int] = {}
    for attempt in attempts:
        if attempt.outcome is not None:
            found[attempt.outcome] = found.get(attempt.outcome, 0) + 1
    return found
