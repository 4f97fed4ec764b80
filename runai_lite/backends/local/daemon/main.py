"""The daemon process: take the home's daemon lock, serve until SIGTERM, woken early by a byte on
the home's FIFO (commands write one after changing the store)."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import select
import signal
import sys
from collections.abc import Callable
from typing import Any

from ....errors import RunaiLiteError
from ..paths import PIDFILE_READY, Home, write_private
from .sequencer import Daemon

log = logging.getLogger("runai_lite.daemon")


def open_wake_fifo(home: Home) -> int:
    """The daemon's end of the wake FIFO. Opened read-write so it never sees end-of-file when the
    last command closes its end."""
    try:
        os.mkfifo(home.wake_fifo, 0o600)
    except FileExistsError:
        pass
    return os.open(home.wake_fifo, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)


def wait_for_wake(fd: int, timeout: float) -> None:
    ready, _, _ = select.select([fd], [], [], timeout)
    if ready:
        try:
            while os.read(fd, 4096):
                pass
        except BlockingIOError:
            pass


def main(argv: list[str] | None = None, front_door: Callable[[Home], Any] | None = None) -> int:
    """`front_door(home)`, called once this process holds the home's daemon lock and before it says
    it is ready, starts a server in front of the store (the personal daemon's socket, `server.py`);
    what it returns is shut down and closed when the daemon stops."""
    parser = argparse.ArgumentParser(prog="runai-lite-daemon", description="the embedded runai-lite controller")
    parser.add_argument("--home", required=True)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    home = Home.at(args.home)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    lock_fd = os.open(home.daemon_lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another daemon serves this home
    # The pid goes out at once (so `local stop` never signals a stale one); "ready" once serving.
    write_private(home.daemon_pid, f"{os.getpid()}\n")
    home.daemon_error.unlink(missing_ok=True)
    try:
        daemon = Daemon(home)
    except Exception as error:  # whatever stops it starting is reported to the command that started it
        write_private(home.daemon_error, str(error) if isinstance(error, RunaiLiteError) else
                      f"{type(error).__name__}: {error}")
        home.daemon_pid.unlink(missing_ok=True)
        log.error("cannot start: %s", error)
        return 3
    wake_fd = open_wake_fifo(home)

    def stop(signum, frame):
        daemon.stopping = True
        try:
            os.write(wake_fd, b"!")  # end the wait now, not at the next tick
        except OSError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("runai-lite daemon %d serving %s on node %s", os.getpid(), home.root, daemon.node)
    server = front_door(home) if front_door is not None else None
    try:
        daemon.run(lambda timeout: wait_for_wake(wake_fd, timeout),
                   ready=lambda: write_private(home.daemon_pid, f"{os.getpid()}\n{PIDFILE_READY}\n"))
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        home.daemon_pid.unlink(missing_ok=True)
        daemon.close()
        log.info("runai-lite daemon %d stopped", os.getpid())
    return 0


if __name__ == "__main__":
    sys.exit(main())
