"""`runai port-forward`'s relay on real sockets: bytes both ways, a connection per accepted
client, half-closes passed on, and a connector that fails reported while the relay goes on."""

from __future__ import annotations

import socket
import threading

import pytest

from runai_lite.backends.relay import Forward, Relay


@pytest.fixture
def upper_server():
    """Reads until the client stops sending, then answers everything upper-cased and closes."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(4096):
                    data += chunk
                conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def _running(relay: Relay) -> threading.Thread:
    thread = threading.Thread(target=relay.serve, daemon=True)
    thread.start()
    return thread


def _ask(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)  # the server answers once we have finished
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
        return answer


def test_each_connection_is_relayed_with_its_half_close(upper_server):
    relay = Relay([Forward(0, upper_server, lambda: socket.create_connection(("127.0.0.1", upper_server)))])
    thread = _running(relay)
    ((_, local, remote),) = relay.bound()
    assert remote == upper_server and local != 0
    big = b"x" * 300_000  # more than one buffer each way
    assert _ask(local, big) == big.upper()
    assert _ask(local, b"second") == b"SECOND"
    relay.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", local), timeout=2)


def test_a_failing_connector_closes_that_connection_and_is_reported(upper_server):
    errors = []
    attempts = iter([ConnectionRefusedError("refused"), None])

    def connect() -> socket.socket:
        error = next(attempts)
        if error is not None:
            raise error
        return socket.create_connection(("127.0.0.1", upper_server))

    relay = Relay([Forward(0, 9, connect)], on_error=lambda forward, error: errors.append((forward.remote_port, error)))
    _running(relay)
    local = relay.bound()[0][1]
    try:  # closed at once: an end of stream, or a reset (seen where we next touch the socket)
        assert _ask(local, b"lost") == b""
    except OSError:
        pass
    assert _ask(local, b"kept") == b"KEPT"
    assert [(port, str(error)) for port, error in errors] == [(9, "refused")]
    relay.stop()


def test_a_local_port_in_use_is_an_error_before_anything_listens():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            Relay([Forward(0, 1, lambda: socket.socket()), Forward(port, 2, lambda: socket.socket())])
