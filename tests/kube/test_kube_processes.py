"""`runai-lite controller` and `runai-lite agent` as processes (out of cluster, with a kubeconfig)
against the API emulator: they find each other through the API only, schedule the quickstart's
first job, show it in their /metrics, and stop cleanly on SIGTERM, giving the Lease back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.install import AGENT, CONTROLLER
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec

from tests.metrics.scrape import get, samples, value

from .world import World

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


def runai_lite(*args: str, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-c", "from runai_lite.cli.runai_lite import main; main()", *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def wait_for(what: str, condition, processes: list[subprocess.Popen], logs: list[Path], limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        for process, log in zip(processes, logs, strict=True):
            assert process.poll() is None, f"{log.name} exited:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + "\n".join(
            f"--- {log.name}\n{log.read_text()[-3000:]}" for log in logs)
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict:
    status, text = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, text
    return samples(text)


def test_controller_and_agent_processes_run_a_mig_job(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    kube_emulator.add_node("gpu-node-1", labels={k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB"})
    # each as its own ServiceAccount, as installed: RBAC and the admission policies apply to them
    # the agent with the token of a pod on its node, as the node restriction policy requires
    as_controller, as_agent = (str(kube_emulator.write_kubeconfig(tmp_path / f"{name}.kubeconfig",
                                                                  service_account=f"{k.SYSTEM_NAMESPACE}/{account}",
                                                                  node=node))
                               for name, account, node in (("controller", CONTROLLER, None),
                                                           ("agent", AGENT, "gpu-node-1")))
    logs = [tmp_path / "controller.log", tmp_path / "agent.log"]
    ports = free_port(), free_port()
    processes = [
        runai_lite("controller", "--kubeconfig", as_controller, "--image", "runai-lite:test", "--identity", "c1",
                   "--resync", "0.5", "--metrics-port", str(ports[0]), log=logs[0]),
        runai_lite("agent", "--kubeconfig", as_agent, "--node", "gpu-node-1", "--driver", "simulated",
                   "--simulate", "A100-SXM4-40GB:1", "--state-dir", str(tmp_path / "gpus"), "--interval", "0.5",
                   "--metrics-port", str(ports[1]), log=logs[1]),
    ]
    try:
        wait_for("the agent's GPU report", lambda: k.GPU_INVENTORY in (
            kube_emulator.get("nodes", "gpu-node-1")["metadata"].get("annotations") or {}), processes, logs)
        world.backend.create_project("team-a", 1)
        world.backend.set_dynamic_mig("gpu-node-1", True)
        world.backend.submit(JobSpec(name="mig1", project="team-a", image="cuda",
                                     request=request_from_flags(gpu_memory="10GB")))
        kube_emulator.job_controller.sync()
        wait_for("the job to be bound", lambda: any(p["spec"].get("nodeName") for p in world.pods_of("team-a", "mig1")),
                 processes, logs)
        env = world.device_env("team-a", "mig1")
        assert env["NVIDIA_VISIBLE_DEVICES"].startswith("MIG-")
        assert kube_emulator.get("leases", k.LEASE_NAME, "runai-lite")["spec"]["holderIdentity"] == "c1"

        # What Prometheus would scrape: the controller sees the partition in use and the allocation
        # on it, the agent created it, and both counted their API requests.
        wait_for("the controller's metrics to show the partition in use", lambda: value(
            scrape(ports[0]), "runai_lite_mig_instances", node="gpu-node-1", profile="1g.10gb", state="used") == 1,
            processes, logs)
        # the pass that claims the partition planned from a snapshot where the job still waited
        wait_for("a pass after the claim", lambda: value(scrape(ports[0]), "runai_lite_pending_jobs") == 0,
                 processes, logs)
        controller = scrape(ports[0])
        assert value(controller, "runai_lite_allocations", node="gpu-node-1", kind="mig") == 1
        assert value(controller, "runai_lite_gpus_allocated", kind="mig") == pytest.approx(1 / 7, abs=0.001)
        assert value(controller, "runai_lite_gpu_capacity", node="gpu-node-1", mode="dynamic-mig") == 1
        assert value(controller, "runai_lite_pending_jobs") == 0
        assert value(controller, "runai_lite_scheduling_pass_duration_seconds_count") >= 1
        assert value(controller, "runai_lite_api_requests_total", verb="list") >= 1
        assert value(controller, "runai_lite_api_requests_total", verb="watch") >= 1
        assert value(controller, "runai_lite_api_requests_total", verb="create", code="201") >= 1  # the binding
        agent = scrape(ports[1])
        assert value(agent, "runai_lite_mig_operations_total", operation="create") == 1
        assert value(agent, "runai_lite_api_requests_total", verb="patch", code="200") >= 1
        for port in ports:
            assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
            assert get(f"http://127.0.0.1:{port}/readyz") == (200, "ok\n")
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    assert not kube_emulator.get("leases", k.LEASE_NAME, "runai-lite")["spec"].get("holderIdentity")
