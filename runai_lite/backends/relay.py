"""`runai port-forward`'s TCP relay: listen on local ports and, for each connection accepted, open
a connection to the job's port through the backend's connector and copy bytes both ways until
both sides have finished.

One thread accepts on each listening socket; each relayed connection gets two copying threads, one
per direction. A side that finishes sending (EOF) is passed on as a half-close, so a request-reply
protocol that closes its write side (an HTTP/1.0 client, `nc -N`) still gets its reply. A connector
that fails closes the accepted connection and is reported through `on_error`; the relay goes on.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BUFFER = 64 * 1024

Connector = Callable[[], socket.socket]  # opens a new connection to the job's port


@dataclass(frozen=True)
class Forward:
    local_port: int
    remote_port: int
    connect: Connector


class Relay:
    """Listening sockets for some forwards; `serve()` runs until `stop()`."""

    def __init__(self, forwards: Sequence[Forward], address: str = "127.0.0.1",
                 on_error: Callable[[Forward, Exception], None] = lambda forward, error: None):
        self.forwards = tuple(forwards)
        self.on_error = on_error
        self._stopped = threading.Event()
        self._listeners: list[tuple[socket.socket, Forward]] = []
        try:
            for forward in self.forwards:
                listener = socket.create_server((address, forward.local_port), reuse_port=False)
                self._listeners.append((listener, forward))
        except OSError:
            self.close()
            raise

    def bound(self) -> list[tuple[str, int, int]]:
        """(address, local port, remote port) per forward, with the port the system chose for 0."""
        return [(*listener.getsockname()[:2], forward.remote_port) for listener, forward in self._listeners]

    def serve(self) -> None:
        threads = [threading.Thread(target=self._accept, args=pair, daemon=True) for pair in self._listeners]
        for thread in threads:
            thread.start()
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()
        self.close()

    def close(self) -> None:
        for listener, _ in self._listeners:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes an accept() blocked in another thread (Linux)
            except OSError:
                pass
            listener.close()

    def _accept(self, listener: socket.socket, forward: Forward) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._relay, args=(client, forward), daemon=True).start()

    def _relay(self, client: socket.socket, forward: Forward) -> None:
        try:
            remote = forward.connect()
        except Exception as error:  # a failed connection is that connection's, not the relay's
            self.on_error(forward, error)
            client.close()
            return
        finished = threading.Barrier(2, action=lambda: _close(client, remote))
        for source, target in ((client, remote), (remote, client)):
            threading.Thread(target=_copy, args=(source, target, finished), daemon=True).start()


def _copy(source: socket.socket, target: socket.socket, finished: threading.Barrier) -> None:
    try:
        while chunk := source.recv(BUFFER):
            target.sendall(chunk)
        how = socket.SHUT_WR  # this side is done sending: say so, the other may still answer
    except OSError:
        how = socket.SHUT_RDWR  # reset or gone: end both directions
    for sock, side in ((target, how), (source, socket.SHUT_RD if how == socket.SHUT_WR else how)):
        try:
            sock.shutdown(side)
        except OSError:
            pass
    try:
        finished.wait()
    except threading.BrokenBarrierError:
        pass


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.close()
        except OSError:
            pass
