"""Where the embedded mode keeps its state, and the file modes it keeps it with.

Personal mode: everything lives under one home directory (`$RUNAI_LITE_HOME`, else the XDG data
dir), which is 0700 and owned by the user whose daemon serves it; every file in it is created 0600.
A home owned by another account, or writable by others, is refused: nobody else's process may run a
daemon (or plant files) there. The home's path is resolved once, so a symlinked home has one name
for the daemon, its pidfile and `local stop`. Files are opened relative to their directory's
descriptor and never through a symbolic link.

System mode: one machine-wide daemon keeps its state in `/var/lib/runai-lite` (0700, root) and
listens on `/run/runai-lite/api.sock` (the socket 0666 in a 0755 directory: anyone may connect,
and the daemon asks the kernel who did). Both move under `$RUNAI_LITE_SYSTEM_DIR` when it is set.
A command uses the system daemon when the system mode is installed (its state directory exists)
and `$RUNAI_LITE_HOME` is not set.

Nothing here imports more than the standard library (and the errors), so the CLI can find its home
without paying for anything else.
"""

# Annotations are not postponed here: a named tuple compiles each postponed field annotation
# (typing.ForwardRef) when the module loads, ~0.2 ms apiece on every command.

import fcntl
import os
from pathlib import Path
from typing import NamedTuple

from ...files import (  # noqa: F401 - the embedded mode's modules find them here
    DIR_MODE,
    FILE_MODE,
    HOME_ENV,
    check_own_private_dir,
    ensure_private_dir,
    open_private,
    write_private,
)

SYSTEM_DIR_ENV = "RUNAI_LITE_SYSTEM_DIR"
SOCKET_DIR_MODE = 0o755
SOCKET_MODE = 0o666


def default_home() -> Path:
    """`$RUNAI_LITE_HOME`, else `$XDG_DATA_HOME/runai-lite`, else `~/.local/share/runai-lite`."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "runai-lite"


PIDFILE_READY = "ready"  # the pidfile's second line once the daemon serves


class Home(NamedTuple):  # a named tuple: a dataclass costs every command ~1 ms of CPU to define
    root: Path

    @classmethod
    def at(cls, root: Path | str | None = None) -> "Home":
        """The home at `root` (default: `default_home()`), created if missing, checked to be this
        account's own and private (`UserError` otherwise), its path resolved."""
        chosen = Path(root).expanduser() if root is not None else default_home()
        home = cls(chosen.resolve())
        home.ensure()
        return home

    def ensure(self) -> None:
        self.root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        check_own_private_dir(self.root)
        for directory in (self.logs, self.run):
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
    def api_socket(self) -> Path:
        """Where a personal daemon serves its owner (`server.serve_personal`)."""
        return self.root / "api.sock"

    @property
    def metrics(self) -> Path:
        """The daemon's metrics in Prometheus' text format, rewritten whenever they change."""
        return self.root / "metrics.prom"

    @property
    def simulated_state(self) -> Path:
        return self.root / "simulated-gpus.json"

    def job_log(self, job_id: str) -> Path:
        return self.logs / f"{job_id}.log"

    def attempt_file(self, job_id: str, attempt: int, kind: str) -> Path:
        """`kind` is `lock` (held while the attempt's processes live), `pid` (the shim's), `child`
        (the job's main process) or `exit`."""
        return self.run / f"{job_id}.{attempt}.{kind}"


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


def lock_holder(path: Path) -> int | None:
    """The pid of the process holding a `flock` on `path`, from `/proc/locks`; None if none does."""
    try:
        info = os.stat(path)
        with open("/proc/locks") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        words = line.split()
        if "->" in words:  # a waiter, not the holder
            continue
        if len(words) >= 6 and words[1] == "FLOCK" and words[5] == device:
            return int(words[4])
    return None


# ---------------------------------------------------------------------------------- system mode


class SystemDirs(NamedTuple):
    """Where the machine-wide daemon keeps its state (root only) and its socket (everyone)."""

    state: Path
    runtime: Path

    @property
    def socket(self) -> Path:
        return self.runtime / "api.sock"


def system_dirs() -> SystemDirs:
    base = Path(os.environ.get(SYSTEM_DIR_ENV) or "/")
    return SystemDirs(state=base / "var" / "lib" / "runai-lite", runtime=base / "run" / "runai-lite")


def system_socket() -> Path | None:
    """The system daemon's socket when commands should use it: the system mode is installed (its
    state directory exists) and no personal home is chosen with `$RUNAI_LITE_HOME`. A daemon that
    is down is then reported as such, rather than replaced by a personal one behind the user's back."""
    if os.environ.get(HOME_ENV):
        return None
    dirs = system_dirs()
    return dirs.socket if os.path.lexists(dirs.state) else None


def repair_command(db: Path) -> str:
    """The command that repairs the state database `db`, for the home it belongs to."""
    home = db.parent
    if home == system_dirs().state:
        return "sudo runai-adm local repair --system"
    if home == default_home().resolve():
        return "runai-adm local repair"
    return f"RUNAI_LITE_HOME={home} runai-adm local repair"
