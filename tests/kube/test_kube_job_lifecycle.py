"""A job's lifecycle on Kubernetes through the real `runai` CLI (a kubeconfig context on the API
emulator, the real `kubernetes` client): `runai suspend` / `runai resume` as the Job's
`spec.suspend` (the GPU freed, the Job kept, its failures kept), no retry for a command that cannot
run (a podFailurePolicy FailJob rule on exit 126/127), `runai logs` with attempt separators and
`--attempt N`, and describe without a misleading exit code."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone

import pytest
from typer.testing import CliRunner

from runai_lite.backends.kube import conventions as k
from runai_lite.cli import runai
from tests.kube_emulator.fixtures import kubeconfig  # noqa: F401

from .world import World

runner = CliRunner()
NAMESPACE = k.project_namespace("team-a")


@pytest.fixture
def world(kube_emulator, kubeconfig, tmp_path, monkeypatch) -> World:  # noqa: F811
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))
    w = World(kube_emulator, tmp_path)
    w.add_gpu_node("t4-node", 1)
    w.backend.create_project("team-a", 1)
    ok("config", "cluster", "emulator")
    ok("config", "project", "team-a")
    return w


def ok(*args: str) -> str:
    result = runner.invoke(runai.app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str) -> str:
    result = runner.invoke(runai.app, list(args))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result.stderr


def job(name: str) -> dict:
    return json.loads(ok("describe", "job", name, "-o", "json"))


def gpu_holders(world: World) -> list:
    gpu = world.backend.list_nodes()[0].gpus[0]
    return [gpu.whole_job] if gpu.whole_job else []


def test_suspend_frees_the_gpu_for_another_job_and_resume_queues_it_again(world: World):
    ok("submit", "train", "-i", "busybox", "--gpu", "1", "--", "sleep", "600")
    world.settle()
    assert job("train")["status"] == "Running" and gpu_holders(world) == ["team-a/train"]
    ok("submit", "waiting", "-i", "busybox", "--gpu", "1", "--", "sleep", "600")
    world.settle()
    assert job("waiting")["status"] == "Pending"

    assert "The job 'train' has been suspended" in ok("suspend", "train")
    assert world.kube.get("jobs", "train", NAMESPACE)["spec"]["suspend"] is True
    world.settle()
    world.kube.kubelet.finish_terminating()
    world.settle()
    suspended = job("train")
    assert suspended["status"] == "Suspended" and suspended["allocation"] is None
    assert "Suspended" in [e["kind"] for e in suspended["events"]]
    assert job("waiting")["status"] == "Running" and gpu_holders(world) == ["team-a/waiting"]
    assert "Suspended" in ok("list")

    assert "already suspended" in refused("suspend", "train")
    assert "not Suspended" in refused("resume", "waiting")

    ok("delete", "job", "waiting")
    world.settle()
    assert "The job 'train' has been resumed" in ok("resume", "train")
    world.settle()
    resumed = job("train")
    assert resumed["status"] == "Running" and "Resumed" in [e["kind"] for e in resumed["events"]]
    assert gpu_holders(world) == ["team-a/train"]
    # the suspended attempt's pod was deleted: the new one is still attempt 2, and its log says so
    assert [a["number"] for a in resumed["attempt_history"]] == [2]
    pod = world.live_pod("team-a", "train")
    world.kube.set_pod_log(NAMESPACE, pod["metadata"]["name"], "again\n")
    assert ok("logs", "train") == "--- attempt 2 (the pod of attempt 1 is gone) ---\nagain\n"
    assert ok("logs", "train", "--attempt", "2") == "again\n"
    assert "it keeps the pods of attempt 2 (a preempted or suspended attempt's pod is deleted)" in refused(
        "logs", "train", "--attempt", "1")


def test_a_finished_job_cannot_be_suspended(world: World):
    ok("submit", "quick", "-i", "busybox", "--", "true")
    world.settle()
    pod = world.live_pod("team-a", "quick")
    world.kube.kubelet.finish(NAMESPACE, pod["metadata"]["name"], exit_code=0)
    world.settle()
    assert job("quick")["status"] == "Succeeded"
    assert "job quick has Succeeded: only a Pending or Running job can be suspended" in refused("suspend", "quick")
    assert "job nope was not found" in refused("resume", "nope")


def test_a_command_not_found_fails_the_job_at_once(world: World):
    ok("submit", "typo", "-i", "busybox", "--backoff-limit", "4", "--", "no-such-command")
    world.settle()
    pod = world.live_pod("team-a", "typo")
    world.kube.kubelet.finish(NAMESPACE, pod["metadata"]["name"], exit_code=127)
    world.settle()
    described = job("typo")
    assert described["status"] == "Failed" and described["exit_code"] == 127
    assert len(world.pods_of("team-a", "typo")) == 1  # no retry
    failed = [c for c in world.kube.get("jobs", "typo", NAMESPACE)["status"]["conditions"] if c["type"] == "Failed"]
    assert failed[0]["reason"] == "PodFailurePolicy"


def test_logs_separate_attempts_and_show_one_attempt(world: World):
    # Kubernetes times have whole seconds, and a Job's retries come at least 10 s apart (its backoff)
    moment = [datetime.now(timezone.utc)]
    world.kube.store.clock = lambda: moment[0]
    ok("submit", "flaky", "-i", "busybox", "--backoff-limit", "2", "--", "sh", "-c", "echo run; exit 3")
    for _ in range(2):
        moment[0] += timedelta(seconds=10)
        world.settle()
        (pod,) = [p for p in world.pods_of("team-a", "flaky") if p["status"].get("phase") == "Running"]
        world.kube.set_pod_log(NAMESPACE, pod["metadata"]["name"], "run\n")
        world.kube.kubelet.finish(NAMESPACE, pod["metadata"]["name"], exit_code=3)
    moment[0] += timedelta(seconds=10)
    world.settle()
    pending = job("flaky")
    assert pending["status"] in ("Pending", "Running") and pending["exit_code"] is None
    assert [a["outcome"] for a in pending["attempt_history"]][:2] == ["failed", "failed"]
    shown = ok("describe", "job", "flaky")
    assert "EXIT CODE" not in shown and "LAST ATTEMPT:" in shown and "attempt 2: exit code 3" in shown
    assert "2 failed; backoff limit 2" in shown

    assert ok("logs", "flaky").splitlines()[:3] == ["run", "--- attempt 2 (exit code 3) ---", "run"]
    assert ok("logs", "flaky", "--attempt", "1") == "run\n"
    assert "job flaky has no attempt 9" in refused("logs", "flaky", "--attempt", "9")


def _upper_server() -> tuple[socket.socket, int]:
    """A TCP server answering with what it gets upper-cased: the process in the job's pod."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(4096):
                    conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def test_port_forward_reaches_the_jobs_pod_through_pods_portforward(world: World):
    server, pod_port = _upper_server()
    ok("submit", "web", "-i", "busybox", "--port", "8080", "--", "serve")
    world.settle()
    pod = world.live_pod("team-a", "web")
    world.kube.serve_pod_port(NAMESPACE, pod["metadata"]["name"], 8080, ("127.0.0.1", pod_port))

    forward = subprocess.Popen([sys.executable, "-m", "runai_lite.cli.runai", "port-forward", "web", "--port",
                                "0:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(" -> 8080\n"), (
            line, forward.stderr.read() if forward.poll() is not None else "")
        local = int(line.split()[2].rpartition(":")[2])
        for text in (b"hello pod\n", b"twice\n"):
            with socket.create_connection(("127.0.0.1", local), timeout=30) as conn:
                conn.sendall(text)
                assert conn.recv(4096) == text.upper()
    finally:
        forward.send_signal(signal.SIGINT)
        assert forward.wait(timeout=30) == 130
        server.close()
    forwarded = [r for r in world.kube.requests if r.subresource == "portforward"]
    assert len(forwarded) == 2 and forwarded[0].verb == "create"


def test_port_forward_refuses_a_job_that_has_not_started(world: World):
    ok("submit", "big", "-i", "busybox", "--gpu", "2", "--port", "8080", "--", "serve")
    world.settle()
    assert "job big has not started yet" in refused("port-forward", "big", "--port", "8080")


def test_top_job_shows_what_each_job_holds(world: World):
    ok("submit", "whole", "-i", "busybox", "--gpu", "1", "--", "sleep", "600")
    world.settle()
    ok("submit", "later", "-i", "busybox", "--gpu", "1", "--", "sleep", "600")
    world.settle()
    rows = {r["name"]: r for r in json.loads(ok("top", "job", "-o", "json"))}
    assert rows["whole"]["status"] == "Running" and rows["whole"]["node"] == "t4-node"
    assert rows["whole"]["allocation"]["kind"] == "gpu" and rows["whole"]["measured"] is False
    assert "not measured on Kubernetes" in rows["whole"]["note"]
    assert rows["later"]["status"] == "Pending" and rows["later"]["allocation"] is None
    table = ok("top", "job")
    assert "whole" in table and "(requests 1)" in table
