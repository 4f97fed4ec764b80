"""Where the embedded mode keeps its state, and the file modes it keeps it with.

Everything lives under one home directory (`$RUNAI_LITE_HOME`, else the XDG data dir), which is
0700; every file in it is created 0600. Nothing here imports more than the standard library, so the
CLI can find its home without paying for anything else.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from .shim import write_atomically

HOME_ENV = "RUNAI_LITE_HOME"
DIR_MODE = 0o700
FILE_MODE = 0o600


def default_home() -> Path:
    """`$RUNAI_LITE_HOME`, else `$XDG_DATA_HOME/runai-lite`, else `~/.local/share/runai-lite`."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "runai-lite"


PIDFILE_READY = "ready"  # the pidfile's second line once the daemon serves


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def at(cls, root: Path | str | None = None) -> Home:
        home = cls(Path(root).expanduser().absolute() if root is not None else default_home().absolute())
        home.ensure()
        return home

    def ensure(self) -> None:
        for directory in (self.root, self.logs, self.run):
            ensure_private_dir(directory)

    @property
    def db(self) -> Path:
        return self.root / "state.db"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """Per-attempt supervision files: liveness locks, pids and exit codes."""
        return self.root / "run"

    @property
    def daemon_lock(self) -> Path:
        return self.root / "daemon.lock"

    @property
    def daemon_pid(self) -> Path:
        """The daemon's pid, then a line PIDFILE_READY once it serves."""
        return self.root / "daemon.pid"

    @property
    def daemon_log(self) -> Path:
        return self.root / "daemon.log"

    @property
    def daemon_error(self) -> Path:
        """Why the last daemon could not start, for the command that started it to report."""
        return self.root / "daemon.error"

    @property
    def wake_fifo(self) -> Path:
        return self.root / "wake.fifo"

    @property
    def simulated_state(self) -> Path:
        return self.root / "simulated-gpus.json"

    def job_log(self, job_id: str) -> Path:
        return self.logs / f"{job_id}.log"

    def attempt_file(self, job_id: str, attempt: int, kind: str) -> Path:
        """`kind` is `lock` (held while the attempt's processes live), `pid` or `exit`."""
        return self.run / f"{job_id}.{attempt}.{kind}"


def ensure_private_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)


def open_private(path: Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_APPEND) -> int:
    """Open (creating 0600) and return the descriptor; an existing file is tightened to 0600."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
        os.fchmod(fd, FILE_MODE)
    return fd


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically with `text`, mode 0600 (the shim's own helper: it has to stay
    standard-library only, so it holds the one copy)."""
    write_atomically(str(path), text)


def lock_held(path: Path) -> bool:
    """True while some process holds an exclusive `flock` on `path` (a daemon, or a job attempt)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
