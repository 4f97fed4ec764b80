"""The machine-wide daemon's socket: modes, the versioned protocol, streaming logs, and what a
client is told when the daemon is down. Run as root against a temporary system directory."""

from __future__ import annotations

import socket
import stat
import struct
import subprocess
import sys

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local import protocol
from runai_lite.backends.local.control import daemon_status, daemon_stop
from runai_lite.backends.local.paths import system_dirs
from runai_lite.errors import OperationalError

from ..local.conftest import spec
from .conftest import needs_root, wait_for

pytestmark = [pytest.mark.e2e, needs_root]


def _ask(message: dict | bytes) -> dict | None:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with conn:
        conn.connect(str(system_dirs().socket))
        if isinstance(message, bytes):
            conn.sendall(message)
            conn.shutdown(socket.SHUT_WR)
        else:
            protocol.send(conn, message)
        try:
            return protocol.receive(conn)
        except protocol.ProtocolError:
            return None


def test_the_socket_is_open_to_everyone_and_the_state_to_root_only(system_daemon: LocalBackend) -> None:
    dirs = system_dirs()
    assert stat.S_IMODE(dirs.socket.stat().st_mode) == 0o666 and stat.S_ISSOCK(dirs.socket.stat().st_mode)
    assert stat.S_IMODE(dirs.runtime.stat().st_mode) == 0o755
    assert stat.S_IMODE(dirs.state.stat().st_mode) == 0o700 and dirs.state.stat().st_uid == 0
    status = daemon_status(system=True)
    assert status.running and status.socket == str(dirs.socket) and status.simulated == "T4:2"


def test_requests_outside_the_protocol_are_answered_with_an_error_and_the_daemon_serves_on(
        system_daemon: LocalBackend) -> None:
    assert _ask(protocol.request("list_projects")) == {"ok": True, "result": [
        {"name": "team-a", "deserved_gpus": 2.0, "allocated_gpus": 0.0, "running": 0, "pending": 0}]}
    wrong_version = _ask({"version": 99, "op": "list_projects", "args": {}})
    assert wrong_version["ok"] is False and "protocol version 99" in wrong_version["error"]["message"]
    unknown = _ask(protocol.request("drop_tables"))
    assert unknown["ok"] is False and "unknown request 'drop_tables'" in unknown["error"]["message"]
    private = _ask(protocol.request("_require_admin", what="anything"))
    assert private["ok"] is False and "unknown request" in private["error"]["message"]
    # the caller's identity is not an argument anyone can pass
    claimed = _ask(protocol.request("list_jobs", project=None, caller={"uid": 0}))
    assert claimed["ok"] is False and "bad arguments" in claimed["error"]["message"]
    typed = _ask(protocol.request("create_project", name="x", deserved_gpus="lots"))
    assert typed["ok"] is False and typed["error"]["kind"] == "user"
    assert _ask(struct.pack(">I", 12) + b"not json at") is None  # no answer to a broken frame
    assert _ask(struct.pack(">I", protocol.MAX_FRAME_BYTES + 1)) is None
    assert [p.name for p in system_daemon.list_projects()] == ["team-a"]  # still serving


def test_logs_follow_streams_through_the_socket_until_the_job_ends(system_daemon: LocalBackend) -> None:
    system_daemon.submit(spec("talker", "sh", "-c", "for i in 1 2 3; do echo line-$i; sleep 0.2; done"))
    lines = list(system_daemon.logs("team-a", "talker", follow=True))
    assert lines == ["line-1", "line-2", "line-3"]
    assert list(system_daemon.logs("team-a", "talker", tail=1)) == ["line-3"]


def test_a_user_is_told_when_the_system_daemon_is_down_rather_than_given_a_personal_one(
        system_daemon: LocalBackend) -> None:
    assert daemon_stop(system=True)
    with pytest.raises(OperationalError, match="machine-wide runai-lite daemon is not running"):
        LocalBackend().list_jobs(None)
    done = subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", "list", "-A"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "not running" in done.stderr and "Traceback" not in done.stderr
    assert "sudo systemctl start runai-lite" in done.stderr
    wait_for(lambda: not system_dirs().socket.exists(), "the socket to go with its daemon")


def test_runai_list_and_submit_go_over_the_socket_as_plain_json(system_daemon: LocalBackend) -> None:
    # What the table shows comes as rows, and a submission as the flags typed, so that neither
    # command loads the models in the researcher's process; the rows are the records' summaries.
    system_daemon.submit(spec("one", "sleep", "600"))
    system_daemon.submit(spec("two", "sleep", "600"))
    wait_for(lambda: {j.status.value for j in system_daemon.list_jobs("team-a")} == {"Running"}, "both to run")
    assert system_daemon.job_summaries("team-a") == [j.summary() for j in system_daemon.list_jobs("team-a")]
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: print(json.dumps('pydantic' in sys.modules)))\n"
             "from runai_lite.cli.runai import main\nmain()")
    for args in (["list", "-p", "team-a"], ["submit", "three", "-p", "team-a", "-i", "img", "--", "sleep", "600"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == "false", args
    assert {"one", "two", "three"} <= {j.name for j in system_daemon.list_jobs("team-a")}
