"""Controlling the embedded daemon from a command: init, start, stop, status, and the wake-up.

Exactly one daemon serves a home: it holds an exclusive `flock` on `daemon.lock` for its lifetime,
so "is it running?" is one non-blocking lock attempt (no stale pidfile can fool it), and a second
daemon started in a race simply exits. Commands wake the daemon by writing a byte to the home's
FIFO; a daemon that is not there misses nothing, since it reads all its work from the store.

`system=True` controls the machine-wide daemon instead (root only): the same daemon on the system
state directory, with the socket server in front of it (`server.py`). `local stop` finds the daemon
from the holder of its lock and reports it stopped only once nothing holds that lock.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import OperationalError, UserError
from .paths import PIDFILE_READY, SOCKET_DIR_MODE, Home, lock_held, lock_holder, open_private, system_dirs

START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 15.0
SIMULATE_HINT = ("on a machine without NVIDIA GPUs, declare a simulated inventory: "
                 "runai-adm local init --simulate A100-SXM4-40GB:1")


# Run from the same tree as this command (installed or not), whatever directory it runs in.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])
# Both are the daemon with the socket server in front: the personal one serves its owner alone.
_PERSONAL_DAEMON = ("runai_lite.backends.local.server", "personal_main")
_SYSTEM_DAEMON = ("runai_lite.backends.local.server", "main")


def _main_of(entry: tuple[str, str]) -> str:
    module, function = entry
    return f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); from {module} import {function}; sys.exit({function}())"


@dataclass(frozen=True)
class DaemonStatus:
    running: bool
    pid: int | None
    home: str
    node: str | None
    simulated: str | None  # the declared inventory, or None for NVML
    enforcement: str  # the setting (auto, hami-core, mps, framework, none)
    mechanism: str | None  # what the setting resolved to on this machine (known once a daemon ran)
    grace_seconds: float | None
    socket: str | None = None  # the system daemon's socket; None in personal mode
    process_tracking: str | None = None  # cgroup-v2, cgroup-v1 or process-tree (known once a daemon ran)
    process_tracking_reason: str | None = None
    device_confinement: str | None = None  # "enforced: ...", "not enforced: why", "not applicable: why"
    foreign_gpus: dict[str, str] | None = None  # GPU UUID -> why this daemon leaves it alone (another owns it)

    def to_json(self) -> dict:
        return asdict(self)


def daemon_running(home: Home) -> bool:
    return lock_held(home.daemon_lock)


def wake(home: Home) -> None:
    """Tell the daemon something changed. Never blocks and never fails: without a daemon (or with
    a full FIFO, which means a wake-up is already waiting) there is nothing to do."""
    try:
        fd = os.open(home.wake_fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, b"!")
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EPIPE):
            raise
    finally:
        os.close(fd)


def _pidfile(home: Home) -> tuple[int | None, bool]:
    """The daemon's pid, and whether it says it is ready (serving)."""
    try:
        lines = home.daemon_pid.read_text().split()
        return int(lines[0]), lines[1:] == [PIDFILE_READY]
    except (FileNotFoundError, ValueError, IndexError):
        return None, False


def _read_pid(home: Home) -> int | None:
    """The pid of the daemon that holds this home's lock: the lock's holder as the kernel lists it,
    else the pidfile's pid when that process is a daemon of this home."""
    holder = lock_holder(home.daemon_lock)
    if holder is not None:
        return holder
    pid, _ = _pidfile(home)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if pid else b""
    except OSError:
        return None
    return pid if b"runai_lite.backends.local." in cmdline and str(home.root).encode() in cmdline else None


def home_of(home: Path | str | None, system: bool) -> tuple[Home, Path | None]:
    """The home a command controls, and the socket when it is the system daemon's. The system
    directories are root's: anyone else is told so before anything is touched."""
    if not system:
        return Home.at(home), None
    if os.geteuid() != 0:
        raise UserError("the machine-wide runai-lite daemon is controlled by root",
                        "run the command with sudo (users need nothing: `runai` finds the system daemon itself)")
    dirs = system_dirs()
    home_dir = Home.at(dirs.state)
    dirs.runtime.mkdir(mode=SOCKET_DIR_MODE, parents=True, exist_ok=True)
    info = os.lstat(dirs.runtime)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise OperationalError(f"{dirs.runtime} is not a directory owned by root", "remove it and try again")
    os.chmod(dirs.runtime, SOCKET_DIR_MODE, follow_symlinks=False)
    return home_dir, dirs.socket


def daemon_status(home: Path | str | None = None, system: bool = False) -> DaemonStatus:
    home_dir, socket_path = home_of(home, system)
    from .store import Store  # its models load only for the commands that read the store

    store = Store(home_dir.db)
    try:
        config = store.all_config()
    finally:
        store.close()
    running = daemon_running(home_dir)
    return DaemonStatus(
        running=running, pid=_read_pid(home_dir) if running else None, home=str(home_dir.root),
        node=config.get("node"), simulated=config.get("simulate"), enforcement=config.get("enforcement", "auto"),
        mechanism=config.get("enforcement_mechanism"), grace_seconds=config.get("grace_seconds"),
        socket=str(socket_path) if socket_path else None,
        process_tracking=config.get("process_tracking"), process_tracking_reason=config.get("process_tracking_reason"),
        device_confinement=config.get("device_confinement"), foreign_gpus=config.get("foreign_gpus") or None,
    )


def daemon_metrics(home: Path | str | None = None, system: bool = False) -> str:
    """The daemon's metrics in Prometheus' text format, as it last wrote them (it rewrites them in
    every cycle that changed them); the daemon is started first when none runs."""
    home_dir, socket_path = home_of(home, system)
    ensure_daemon(home_dir, socket_path=socket_path)
    try:
        return home_dir.metrics.read_text()
    except FileNotFoundError:
        raise OperationalError("the runai-lite daemon has written no metrics yet",
                               f"try again in a moment; see {home_dir.daemon_log}") from None


def daemon_start(home: Path | str | None = None, timeout: float = START_TIMEOUT_SECONDS,
                 system: bool = False) -> DaemonStatus:
    """Start the daemon in the background unless one runs; return once it serves the home."""
    home_dir, socket_path = home_of(home, system)
    ensure_daemon(home_dir, timeout, socket_path=socket_path)
    return daemon_status(home_dir.root if not system else None, system)


def ensure_daemon(home: Home, timeout: float = START_TIMEOUT_SECONDS, restarts: int = 1,
                  socket_path: Path | None = None) -> None:
    """Start the home's daemon unless one runs, and return once it serves. With `socket_path`, the
    system daemon: the same daemon with the socket server in front of it, listening there."""
    if daemon_running(home):
        return
    home.daemon_error.unlink(missing_ok=True)
    argv = [sys.executable, "-c", _main_of(_PERSONAL_DAEMON), "--home", str(home.root)]
    if socket_path is not None:
        argv = [sys.executable, "-c", _main_of(_SYSTEM_DAEMON), "--home", str(home.root), "--socket", str(socket_path)]
    log_fd = open_private(home.daemon_log)
    try:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log_fd, stderr=log_fd, cwd="/", start_new_session=True, close_fds=True)
    finally:
        os.close(log_fd)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        serving, ready = _pidfile(home)
        if daemon_running(home) and ready:
            if serving == child.pid or child.poll() is not None:
                return
            # Another daemon serves. Ours is about to find the lock taken and exit; wait for that,
            # or it would take over unasked once the other one is stopped (`local stop`).
            time.sleep(0.01)
            continue
        if child.poll() is not None and not daemon_running(home):
            if child.returncode == 0:  # another daemon took the lock first and has since gone: try again
                return ensure_daemon(home, max(0.0, deadline - time.monotonic()), restarts, socket_path)
            if restarts > 0 and _pidfile(home)[0] == child.pid:
                # It served (it wrote its pid) and was then killed: a crash, not a start-up failure;
                # the next daemon carries on from the store. Once: a daemon that dies every time
                # is reported, not restarted for ever.
                return ensure_daemon(home, max(0.0, deadline - time.monotonic()), restarts - 1, socket_path)
            raise _start_failure(home)
        time.sleep(0.01)
    raise OperationalError(f"the runai-lite daemon did not start within {timeout:.0f} s",
                           f"see {home.daemon_log}")


def _start_failure(home: Home) -> OperationalError:
    try:
        reason = home.daemon_error.read_text().strip()
    except FileNotFoundError:
        reason = f"it exited; see {home.daemon_log}"
    from .store import Store  # its models load only for the commands that read the store

    store = Store(home.db)
    try:
        simulated = store.config("simulate")
    finally:
        store.close()
    # the daemon's own error may already say how to proceed (the driver's hint): say it once
    hint = None if simulated or "--simulate" in reason else SIMULATE_HINT
    return OperationalError(f"the runai-lite daemon could not start: {reason}", hint)


def daemon_stop(home: Path | str | None = None, timeout: float = STOP_TIMEOUT_SECONDS, system: bool = False) -> bool:
    """Stop the daemon (jobs keep running and are adopted by the next one). False if none ran;
    `OperationalError` if it is still running when the wait (SIGTERM, then SIGKILL) ends."""
    home_dir, _ = home_of(home, system)
    if not daemon_running(home_dir):
        return False
    pid = _read_pid(home_dir)
    if pid is None:
        raise OperationalError(f"a process holds {home_dir.daemon_lock} but none could be identified to stop",
                               f"find it with: fuser -v {home_dir.daemon_lock}")
    _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while daemon_running(home_dir) and time.monotonic() < deadline:
        time.sleep(0.02)
    if daemon_running(home_dir):
        _signal(pid, signal.SIGKILL)  # a stopped (SIGSTOP) or wedged daemon: jobs survive it anyway
        kill_deadline = time.monotonic() + 2.0
        while daemon_running(home_dir) and time.monotonic() < kill_deadline:
            time.sleep(0.02)
    if daemon_running(home_dir):
        raise OperationalError(f"the runai-lite daemon (pid {pid}) of {home_dir.root} is still running after "
                               f"SIGTERM and SIGKILL", f"see ps -o pid,stat,cmd -p {pid}")
    return True


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def local_init(home: Path | str | None = None, simulate: str | None = None, enforcement: str = "auto",
               grace_seconds: float | None = None, hami_core_path: str | None = None,
               system: bool = False, capacity: tuple[int | None, int | None] = (None, None),
               metrics_address: str | None = None,
               retry_backoff: tuple[float | None, float | None] = (None, None)) -> DaemonStatus:
    """Declare how the embedded node runs (`configure`), then (re)start the daemon with it."""
    configure(home, simulate, enforcement, grace_seconds, hami_core_path, system, capacity, metrics_address,
              retry_backoff)
    daemon_stop(home, system=system)
    return daemon_start(home, system=system)


def configure(home: Path | str | None = None, simulate: str | None = None, enforcement: str = "auto",
              grace_seconds: float | None = None, hami_core_path: str | None = None, system: bool = False,
              capacity: tuple[int | None, int | None] = (None, None), metrics_address: str | None = None,
              retry_backoff: tuple[float | None, float | None] = (None, None)) -> None:
    """Declare how the embedded node runs: a simulated inventory (or NVML when None), the memory
    enforcement setting, the stop grace period, the CPU (millicores) and memory (MiB) the
    scheduler may hand out (None: the machine's own), where the daemon serves its metrics
    (`HOST:PORT`; an empty string stops serving them, None keeps the setting), and a failed job's
    first retry delay and its cap, in seconds (None: as they are). A running daemon uses them once
    restarted.

    Bad input raises `UserError` before anything changes."""
    from ...enforcement import choose_mechanism, parse_setting, probe_node
    from ...gpu.inventory import parse_inventory

    setting = parse_setting(enforcement)
    probe = probe_node(hami_core_path=hami_core_path) if hami_core_path else probe_node()
    choose_mechanism(setting, probe)  # an explicit mechanism the machine lacks is refused here
    if grace_seconds is not None and not 0 < grace_seconds <= 3600:
        raise UserError(f"invalid grace period {grace_seconds:g} s", "give a number of seconds above 0, at most 3600")
    for flag, seconds in zip(("--retry-backoff", "--retry-backoff-max"), retry_backoff, strict=True):
        if seconds is not None and not 0 < seconds <= 86400:
            raise UserError(f"invalid {flag} {seconds:g} s", "give a number of seconds above 0, at most 86400")
    canonical = parse_inventory(simulate).spec() if simulate is not None else None
    if metrics_address:
        from ...metrics.endpoint import parse_address

        parse_address(metrics_address)
    home_dir, _ = home_of(home, system)
    from .store import Store  # its models load only for the commands that read the store

    store = Store(home_dir.db)
    try:
        previous = store.config("simulate")
        active = store.active_jobs()
        if active and canonical != previous:
            raise UserError(
                f"{len(active)} job(s) are still active on the current GPUs ({previous or 'NVML'})",
                "delete them first (runai delete job --all -p PROJECT), then run local init again")
        if canonical is not None:
            from ...gpu.simulated import SimulatedDriver

            SimulatedDriver(home_dir.root, canonical).close()
        else:  # NVML from now on: forget the simulated machine
            home_dir.simulated_state.unlink(missing_ok=True)
        with store.write() as conn:
            store.set_config(conn, "simulate", canonical)
            store.set_config(conn, "enforcement", setting.value)
            if hami_core_path:
                store.set_config(conn, "hami_core_path", hami_core_path)
            if grace_seconds is not None:
                store.set_config(conn, "grace_seconds", grace_seconds)
            if metrics_address is not None:
                store.set_config(conn, "metrics_address", metrics_address.strip() or None)
            for key, seconds in zip(("retry_backoff_seconds", "retry_backoff_max_seconds"), retry_backoff, strict=True):
                if seconds is not None:
                    store.set_config(conn, key, seconds)
            if store.config("node") is None:
                store.set_config(conn, "node", socket.gethostname())
            node = store.node_row(store.config("node"), conn)
            store.set_node_row(conn, dataclasses.replace(node, cpu_milli=capacity[0], memory_mib=capacity[1]))
            store.set_config(conn, "initialised_at", time.time())
    finally:
        store.close()
