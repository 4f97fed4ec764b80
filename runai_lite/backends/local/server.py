"""The embedded daemon's front door: a Unix socket server in front of its store.

The machine-wide daemon: `main` runs as root (by `runai-adm local init --system`, or systemd in the
foreground): it takes the server lock, listens on the socket (mode 0666 in a 0755 directory: anyone
may connect), serves each connection in a thread, and runs the ordinary daemon (`daemon.main`) on the
system state directory in the main thread, until SIGTERM.

A personal daemon serves its owner alone on `api.sock` in the home (`serve_personal`: mode 0600 in
the 0700 home, and a peer of any other uid is refused), so that `runai submit` can hand it the flags
instead of loading the models and the store itself.

Each connection carries one request (`protocol.py`). The caller is who the kernel says connected
(`SO_PEERCRED`), never what the request says; the request goes to a `LocalService` acting for that
caller, whose owner checks decide what it may do. A bad request is answered with an error frame.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import socket
import socketserver
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ...errors import OperationalError, RunaiLiteError, UserError
from . import protocol
from .identity import Caller, peer_caller, user_name
from .paths import SOCKET_MODE, Home, system_dirs
from .service import OPERATIONS, STREAMING, LocalService, operation_types
from .store import Store

log = logging.getLogger("runai_lite.server")
REQUEST_TIMEOUT_SECONDS = 10.0  # a client has this long to send its request
PERSONAL_SOCKET_MODE = 0o600
SOCKET_PATH_LIMIT = 107  # sun_path's 108 bytes, less the terminating NUL


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, home: Home, socket_path: Path, personal: bool = False):
        self.home = home
        self.socket_path = socket_path
        self.personal = personal
        super().__init__(str(socket_path), Handler)

    def server_bind(self) -> None:
        """Bound under a staging name, given its mode (connecting needs write permission on the
        socket: 0666 for everyone, 0600 for a personal daemon's owner), then renamed into place: the
        socket never appears without its mode."""
        staging = self.socket_path.with_name(f".{self.socket_path.name}.{os.getpid()}")
        staging.unlink(missing_ok=True)
        self.socket.bind(str(staging))
        os.chmod(staging, PERSONAL_SOCKET_MODE if self.personal else SOCKET_MODE)
        os.replace(staging, self.socket_path)
        self.server_address = str(self.socket_path)

    def server_close(self) -> None:
        super().server_close()
        self.socket_path.unlink(missing_ok=True)


class Handler(socketserver.BaseRequestHandler):
    server: Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        caller, pid = peer_caller(conn)
        conn.settimeout(REQUEST_TIMEOUT_SECONDS)
        try:
            message = protocol.receive(conn)
            if message is None:
                return
            conn.settimeout(None)
            self._answer(conn, caller, message)
        except (OSError, protocol.ProtocolError) as error:  # the client went away, or spoke nonsense
            log.info("connection from uid %d (pid %d) ended: %s", caller.uid, pid, error)

    def _answer(self, conn: socket.socket, caller: Caller, message: dict[str, Any]) -> None:
        store = None
        try:
            if self.server.personal and caller.uid != os.geteuid():  # the home's mode says so too
                raise UserError(f"this runai-lite daemon serves {user_name(os.geteuid())}'s personal home; "
                                f"you are {caller.user}", "use your own home (RUNAI_LITE_HOME)")
            op, args = _parse(message, self.server.personal)
            store = Store(self.server.home.db)
            service = LocalService(self.server.home, store, lambda: caller, personal=self.server.personal)
            outcome = getattr(service, op)(**args)
            if op in STREAMING:
                self._stream(conn, outcome)
                return
            _, result_type = operation_types(op)
            protocol.send(conn, protocol.result(TypeAdapter(result_type).dump_python(outcome, mode="json")))
        except RunaiLiteError as error:
            protocol.send(conn, protocol.error(error))
        except Exception as error:  # a bug must not take the daemon down: the client is told, the log keeps it
            log.exception("request %r from uid %d failed", message.get("op"), caller.uid)
            protocol.send(conn, protocol.error(OperationalError(
                f"the runai-lite daemon failed on this request ({type(error).__name__}: {error})",
                f"its log says why: {self.server.home.daemon_log}" if self.server.personal
                else "an administrator finds the details in the daemon's log")))
        finally:
            if store is not None:
                store.close()

    @staticmethod
    def _stream(conn: socket.socket, lines: Iterator[str]) -> None:
        try:
            for line in lines:
                protocol.send(conn, {"line": line})
        except RunaiLiteError as error:
            protocol.send(conn, protocol.error(error))
            return
        protocol.send(conn, protocol.result(None))


def _parse(message: dict[str, Any], personal: bool) -> tuple[str, dict[str, Any]]:
    """The operation and its typed arguments; `UserError` for anything else."""
    # A client of another release: the machine-wide daemon runs the release root installed; a
    # personal one may still run the release its owner has since upgraded from.
    other_release = ("restart your daemon with the installed runai-lite: runai-adm local stop (the next command "
                     "starts it)" if personal else "use the runai-lite the system daemon was installed with")
    version = message.get("version")
    if version != protocol.VERSION:
        raise UserError(f"this runai-lite speaks protocol version {version!r}; the daemon speaks "
                        f"{protocol.VERSION}", other_release)
    op = message.get("op")
    if op not in OPERATIONS:
        raise UserError(f"unknown request {op!r}", other_release)
    params, _ = operation_types(op)
    raw = message.get("args")
    if not isinstance(raw, dict) or not set(raw) <= set(params):
        raise UserError(f"bad arguments for {op}", other_release)
    try:
        return op, {name: TypeAdapter(params[name]).validate_python(value) for name, value in raw.items()}
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise UserError(f"invalid request {op}: {problem['msg']}", "see `runai --help`") from None


def serve_personal(home: Home) -> Server | None:
    """Serve the personal home's owner on `home.api_socket` from a thread, until `shutdown`; None
    (and the CLI does the work in its own process, as before) where the home's path is too long for
    a Unix socket's name or the socket cannot be made."""
    path = home.api_socket
    if len(os.fsencode(path)) > SOCKET_PATH_LIMIT:
        log.info("not serving %s: a Unix socket's path is at most %d bytes", path, SOCKET_PATH_LIMIT)
        return None
    try:
        server = Server(home, path, personal=True)
    except OSError as error:
        log.warning("not serving %s: %s", path, error)
        return None
    threading.Thread(target=server.serve_forever, name="api-server", daemon=True).start()
    return server


# ---------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    dirs = system_dirs()
    parser = argparse.ArgumentParser(prog="runai-lite-server", description="the machine-wide runai-lite daemon")
    parser.add_argument("--home", default=str(dirs.state), help="state directory (root's, 0700)")
    parser.add_argument("--socket", default=str(dirs.socket), help="the API socket")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    if os.geteuid() != 0:
        print("runai-lite-server: the machine-wide daemon runs as root (it starts jobs as their users)",
              file=sys.stderr)
        return 2
    home = Home.at(args.home)
    lock_fd = os.open(home.root / "server.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another server has the socket
    Path(args.socket).parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    server = Server(home, Path(args.socket))
    thread = threading.Thread(target=server.serve_forever, name="api-server", daemon=True)
    thread.start()
    log.info("runai-lite server %d listening on %s", os.getpid(), args.socket)
    from .daemon.main import main as daemon_main

    try:
        return daemon_main(["--home", str(home.root)])
    finally:
        server.shutdown()
        server.server_close()


def personal_main(argv: list[str] | None = None) -> int:
    """A personal daemon (`--home HOME`), serving its owner on the home's socket."""
    from .daemon.main import main as daemon_main

    return daemon_main(argv, front_door=serve_personal)


if __name__ == "__main__":
    sys.exit(main())
