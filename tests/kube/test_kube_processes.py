"""`runai-lite controller` and `runai-lite agent` as processes (out of cluster, with a kubeconfig)
against the API emulator: they find each other through the API only, schedule the quickstart's
first job, and stop cleanly on SIGTERM, giving the Lease back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.install import AGENT, CONTROLLER
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec

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


def test_controller_and_agent_processes_run_a_mig_job(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    kube_emulator.add_node("gpu-node-1", labels={k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB"})
    # each as its own ServiceAccount, as installed: RBAC and the admission policies apply to them
    as_controller, as_agent = (str(kube_emulator.write_kubeconfig(tmp_path / f"{name}.kubeconfig",
                                                                  service_account=f"{k.SYSTEM_NAMESPACE}/{account}"))
                               for name, account in (("controller", CONTROLLER), ("agent", AGENT)))
    logs = [tmp_path / "controller.log", tmp_path / "agent.log"]
    processes = [
        runai_lite("controller", "--kubeconfig", as_controller, "--image", "runai-lite:test", "--identity", "c1",
                   "--resync", "0.5", log=logs[0]),
        runai_lite("agent", "--kubeconfig", as_agent, "--node", "gpu-node-1", "--driver", "simulated",
                   "--simulate", "A100-SXM4-40GB:1", "--state-dir", str(tmp_path / "gpus"), "--interval", "0.5",
                   log=logs[1]),
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
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=30) for process in processes]
    assert codes == [0, 0], [log.read_text()[-2000:] for log in logs]
    assert not kube_emulator.get("leases", k.LEASE_NAME, "runai-lite")["spec"].get("holderIdentity")
