"""`runai port-forward` and `runai top job` through the real CLI and daemon on the embedded default:
a job running a small TCP server (argv, no shell) reached through the forward, and each job's
allocation and GPU processes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys

import pytest

from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture

# Answers each line with the line upper-cased: what comes back went through the job.
UPPER_SERVER = """
import socket, sys
server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    with conn:
        while data := conn.recv(4096):
            conn.sendall(data.upper())
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _setup(cli: Cli) -> None:
    cli.adm("local", "init", "--simulate", "T4:1")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")


def _ask(port: int, text: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(text)
        answer = b""
        while len(answer) < len(text):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.mark.e2e
def test_port_forward_reaches_a_server_in_the_job(cli: Cli):
    _setup(cli)
    port = _free_port()
    cli.runai("submit", "web", "-i", "img", "--", sys.executable, "-c", UPPER_SERVER, str(port))
    cli.wait_for("web Running", lambda j: j["web"]["status"] == "Running")
    cli.wait_for("web listening", lambda j: "listening" in cli.runai("logs", "web").stdout)

    forward = subprocess.Popen([sys.executable, "-m", "runai_lite.cli.runai", "port-forward", "web", "--port",
                                f"0:{port}"], env=cli.env, cwd=cli.home, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(f" -> {port}\n"), (
            line, forward.stderr.read() if forward.poll() is not None else "")
        local = int(line.split()[2].rpartition(":")[2])
        assert _ask(local, b"hello through the relay\n") == b"HELLO THROUGH THE RELAY\n"
        assert _ask(local, b"again\n") == b"AGAIN\n"  # each connection is forwarded anew
    finally:
        forward.send_signal(signal.SIGINT)
        assert forward.wait(timeout=30) == 130


@pytest.mark.e2e
def test_port_forward_refuses_bad_ports_and_jobs_that_do_not_run(cli: Cli):
    _setup(cli)
    bad = cli.runai("port-forward", "web", "--port", "80:eighty", check=False)
    assert bad.returncode == 2 and "invalid --port '80:eighty'" in bad.stderr
    cli.runai("submit", "holder", "-i", "img", "--gpu", "1", "--", "sleep", "600")
    cli.wait_for("holder Running", lambda j: j["holder"]["status"] == "Running")
    cli.runai("submit", "waiting", "-i", "img", "--gpu", "1", "--", "sleep", "600")
    pending = cli.runai("port-forward", "waiting", "--port", "8080:8080", check=False)
    assert pending.returncode == 2 and "job waiting is Pending, not Running" in pending.stderr
    missing = cli.runai("port-forward", "nope", "--port", "8080", check=False)
    assert missing.returncode == 2 and "job nope was not found" in missing.stderr


@pytest.mark.e2e
def test_top_job_shows_each_jobs_allocation_and_its_gpu_processes(cli: Cli):
    _setup(cli)
    cli.runai("submit", "half", "-i", "img", "--gpu", "0.5", "--", "sleep", "600")
    cli.wait_for("half Running", lambda j: j["half"]["status"] == "Running")
    cli.runai("submit", "big", "-i", "img", "--gpu", "1", "--", "sleep", "600")  # waits: half the GPU is taken
    rows = {r["name"]: r for r in json.loads(cli.runai("top", "job", "-o", "json").stdout)}
    half, big = rows["half"], rows["big"]
    assert half["status"] == "Running" and half["allocation"]["share"] == 0.5
    assert half["gpu_memory_limit_mib"] == 7680  # half of a T4's 15360 MiB
    assert half["measured"] is True and len(half["processes"]) == 1
    assert half["processes"][0]["used_memory_mib"] is None  # a simulated GPU does not measure memory
    assert half["gpu_memory_used_mib"] is None
    assert big["status"] == "Pending" and big["allocation"] is None and big["processes"] == []

    table = cli.runai("top", "job").stdout
    header, *lines = table.splitlines()[1:] if table.startswith("Showing") else table.splitlines()
    assert header.split()[:4] == ["NAME", "PROJECT", "STATUS", "NODE"]
    shown = {line.split()[0]: line for line in lines if line.strip()}
    assert "7.5GiB" in shown["half"] and "not reported" in shown["half"]
    assert str(half["processes"][0]["pid"]) in shown["half"]
    assert "(requests 1)" in shown["big"]
