"""`runai exec` in a job's container, with the process backend's exit-code rule.

Run as processes, a program that does not exist is "PROG: command not found", exit 2 (retype it),
and one that cannot be run (not executable) exit 1. In a container the runtime finds out, exits 127
or 126 and says why on its own standard error (podman: `Error: runc: exec failed: ...: OCI runtime
attempted to invoke a command that was not found`); but the program itself may exit 127 too
(`sh -c nosuch`). So the runtime's standard error is read here on its way to ours: a first line
that is the runtime's own (`Error: `) is held back until the exec ends, and when it ends with 127
or 126 and that line names why, runai says it the process backend's way instead. Anything else,
the program's own errors included, is shown unchanged and its exit code passed through.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence

from ...errors import OperationalError, UserError
from ..terminal import run_attached, write_all

RUNTIME_ERROR_PREFIX = b"Error: "  # how podman (and docker) start a message of their own
NOT_FOUND = (b"OCI runtime attempted to invoke a command that was not found", b"executable file not found")
NOT_RUNNABLE = (b"OCI permission denied", b"permission denied")
HOLD_AT_MOST = 64 * 1024  # past this it cannot be the runtime's one line: shown as it comes


def exec_in_container(command: Sequence[str], program: str, *, stdin: bool, tty: bool) -> int:
    """Run `command` (`podman exec ...`) attached; its exit code, or the error of a program the
    container does not have (UserError) or cannot run (OperationalError)."""
    read_end, write_end = os.pipe()
    relay = StderrRelay(read_end, sys.stderr.fileno())
    relay.start()
    try:
        code = run_attached(command, stdin=stdin, tty=tty, stderr=write_end)
    except OSError as error:  # the runtime itself is gone (uninstalled since the job started)
        raise OperationalError(f"cannot run {command[0]}: {error.strerror}") from None
    finally:
        os.close(write_end)
        relay.join()
        os.close(read_end)
    held = relay.held
    if held is not None:
        refusal = refusal_of(code, held, program)
        if refusal is not None:
            raise refusal
        write_all(relay.out, held)
    return code


def refusal_of(code: int, runtime_said: bytes, program: str) -> UserError | OperationalError | None:
    """What runai says when the runtime could not start `program` (exit 127/126 and its reason)."""
    if code == 127 and any(marker in runtime_said for marker in NOT_FOUND):
        return UserError(f"{program}: command not found",
                         "give a program on the image's PATH or a path to it in the container")
    if code == 126 and any(marker in runtime_said for marker in NOT_RUNNABLE):
        return OperationalError(f"cannot run {program}: permission denied (is it executable in the image?)")
    return None


class StderrRelay(threading.Thread):
    """Copies a pipe to `out` as it comes, except a first line that starts as the runtime's own
    messages do: that (and what follows it) is kept in `held` until the pipe ends, unless it grows
    past what one such line could be."""

    def __init__(self, source: int, out: int):
        super().__init__(daemon=True)
        self.source, self.out = source, out
        self.held: bytes | None = None

    def run(self) -> None:
        buffer = b""
        holding = None  # undecided until the first bytes show whether they are the runtime's
        while chunk := os.read(self.source, 65536):
            if holding is None:
                buffer += chunk
                if len(buffer) < len(RUNTIME_ERROR_PREFIX) and RUNTIME_ERROR_PREFIX.startswith(buffer):
                    continue
                holding = buffer.startswith(RUNTIME_ERROR_PREFIX)
                chunk, buffer = (b"", buffer) if holding else (buffer, b"")
            elif holding:
                buffer += chunk
                chunk = b""
                if len(buffer) > HOLD_AT_MOST:
                    holding, chunk, buffer = False, buffer, b""
            write_all(self.out, chunk)
        if holding or holding is None:
            self.held = buffer or None

