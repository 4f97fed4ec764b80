"""Running a local program attached to this terminal, as `runai exec` does on either backend.

The contract (kubectl's and docker's `exec` flags):
- without `stdin`, the program's input is closed (`/dev/null`); with it, it reads ours;
- with `tty`, the program gets a pseudo-terminal of its own (a new session whose controlling
  terminal it is), whatever our own streams are: its output comes back through the terminal's master
  side, our input goes in when `stdin` is set, our terminal is put in raw mode meanwhile (so Ctrl-C
  and the line editing reach the program) and its size follows ours;
- the program's exit code comes back; death by signal N reads as 128+N, as a shell reports it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence

CHUNK = 65536
EOT = b"\x04"  # what a terminal sends for Ctrl-D: end of input for a program reading its terminal


def exit_status(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_attached(argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
                 stdin: bool = False, tty: bool = False, stderr: int | None = None) -> int:
    """Run `argv` to its end as the module docstring says; `FileNotFoundError`/`OSError` from
    starting it are the caller's to word. `stderr`: a file descriptor the program writes its errors
    to instead of ours (with `tty`, instead of its terminal)."""
    if not tty:
        done = subprocess.run(list(argv), env=env, cwd=cwd, stdin=None if stdin else subprocess.DEVNULL,
                              stderr=stderr, check=False)
        return exit_status(done.returncode)
    return _run_in_pty(argv, env, cwd, stdin, stderr)


def _run_in_pty(argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None, stdin: bool,
                stderr: int | None) -> int:
    import fcntl
    import pty
    import termios
    import tty as ttymode

    master, slave = pty.openpty()
    ours = sys.stdin.fileno() if stdin else None
    ours_is_terminal = ours is not None and os.isatty(ours)

    def copy_size(*_: object) -> None:
        for fd in (0, 1, 2):
            if os.isatty(fd):
                fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
                return

    def take_terminal() -> None:  # in the child, after setsid: the pty becomes its controlling terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    copy_size()
    try:
        process = subprocess.Popen(list(argv), env=env, cwd=cwd, stdin=slave, stdout=slave,
                                   stderr=slave if stderr is None else stderr,
                                   start_new_session=True, preexec_fn=take_terminal)
    finally:
        os.close(slave)
    saved = termios.tcgetattr(ours) if ours_is_terminal else None
    previous_winch = signal.signal(signal.SIGWINCH, copy_size)
    try:
        if saved is not None:
            ttymode.setraw(ours, termios.TCSANOW)  # keep what was typed ahead
        _relay(master, ours, process)
    finally:
        if saved is not None:
            termios.tcsetattr(ours, termios.TCSAFLUSH, saved)
        signal.signal(signal.SIGWINCH, previous_winch)
        os.close(master)
    return exit_status(process.wait())


def _relay(master: int, ours: int | None, process: subprocess.Popen) -> None:
    """Copy the program's output to our stdout and our input (if any) to the program, until the
    program has exited and its output is drained (a background child still holding the terminal
    open does not keep us waiting)."""
    out = sys.stdout.fileno()
    sys.stdout.flush()
    sources = [master] + ([ours] if ours is not None else [])
    while True:
        exited = process.poll() is not None
        try:
            ready, _, _ = select.select(sources, [], [], 0 if exited else 0.1)
        except InterruptedError:
            continue
        if exited and master not in ready:
            return
        if master in ready:
            try:
                data = os.read(master, CHUNK)
            except OSError:  # EIO: every holder of the terminal's other side has closed it
                data = b""
            if not data:
                process.wait()
                return
            write_all(out, data)
        if ours is not None and ours in ready:
            data = os.read(ours, CHUNK)
            if data:
                write_all(master, data)
            else:  # our input ended: say so the way a terminal does, once
                os.write(master, EOT)
                sources.remove(ours)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
