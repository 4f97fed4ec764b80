"""`LocalBackend.submit_flags` and the home's socket, against stand-ins for the daemon: a daemon
that takes a submission and goes away before answering leaves the researcher told what to check,
never a silent loss or a second copy; one that holds the lock but does not listen gets the
submission done in the CLI's own process."""

from __future__ import annotations

import fcntl
import os
import socket
import threading

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.paths import Home
from runai_lite.errors import OperationalError
from runai_lite.submission.flags import SubmitFlags

FLAGS = SubmitFlags(project="team-a", image="img", name="a", command=("true",))


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("RUNAI_LITE_SYSTEM_DIR", raising=False)
    home = Home.at(tmp_path / "h")
    fd = os.open(home.daemon_lock, os.O_RDWR | os.O_CREAT, 0o600)  # "a daemon runs"
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield home
    os.close(fd)


def _listen(path, answer):
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    received = []

    def serve():
        conn, _ = server.accept()
        with conn:
            received.append(conn.recv(1 << 20))
            answer(conn)
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return received


def test_a_daemon_that_hangs_up_after_the_request_is_reported_with_what_to_check(home):
    received = _listen(home.api_socket, lambda conn: None)  # reads the request, closes without a word
    backend = LocalBackend(home.root)
    with pytest.raises(OperationalError) as raised:
        backend.submit_flags(FLAGS)
    assert "closed the connection without answering while submitting" in raised.value.message
    assert "runai list -p team-a" in raised.value.hint
    assert b'"op":"submit_flags"' in received[0]


def test_the_receipt_is_the_daemons_answer(home):
    def answer(conn):
        from runai_lite.backends.local import protocol

        protocol.send(conn, protocol.result({"name": "a", "project": "team-a", "notes": ["no runtime"], "warnings": []}))

    _listen(home.api_socket, answer)
    receipt = LocalBackend(home.root).submit_flags(FLAGS)
    assert (receipt.name, receipt.project, receipt.notes, receipt.warnings) == ("a", "team-a", ("no runtime",), ())
