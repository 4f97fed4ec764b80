"""The emulator as a process (`python -m tests.kube_emulator serve`) and the seeds' dynamic-MIG quickstart
against it through real processes only: kubectl installs the chart objects, `runai-lite controller` and
`runai-lite agent --driver simulated` run as they would in the cluster, and `runai` / `runai-adm` drive it
as a user does (docs/kubernetes.md, "Try it without a cluster")."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def environment(tmp_path: Path, kubeconfig: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "KUBECONFIG": str(kubeconfig),
           "RUNAI_LITE_HOME": str(tmp_path / "home"), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    return env


class Processes:
    def __init__(self, tmp_path: Path, env: dict[str, str]):
        self.tmp_path, self.env = tmp_path, env
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, name: str, *argv: str) -> subprocess.Popen:
        log = self.tmp_path / f"{name}.log"
        process = subprocess.Popen(list(argv), cwd=REPO, env=self.env, stdout=log.open("w"), stderr=subprocess.STDOUT)
        self.started.append((process, log))
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}" for _, log in self.started)

    def run(self, *argv: str, stdin: str | None = None) -> str:
        done = subprocess.run(list(argv), cwd=REPO, env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, f"{' '.join(argv)}: {done.stdout}{done.stderr}\n{self.logs()}"
        return done.stdout

    def wait_for(self, what: str, condition, limit: float = 90) -> None:
        deadline = time.monotonic() + limit
        while not condition():
            for process, log in self.started:
                assert process.poll() is None, f"{log.name} exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}:\n{self.logs()}"
            time.sleep(0.3)

    def stop(self) -> list[int]:
        for process, _ in reversed(self.started):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        return [process.wait(timeout=30) for process, _ in self.started]


def start_emulator(tmp_path: Path, kubeconfig: Path, nodes: str) -> subprocess.Popen:
    env = environment(tmp_path, kubeconfig)
    emulator = subprocess.Popen([sys.executable, "-m", "tests.kube_emulator", "serve", "--kubeconfig",
                                 str(kubeconfig), "--nodes", nodes], cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=(tmp_path / "emulator.log").open("w"), text=True)
    line = emulator.stdout.readline()
    assert line.startswith("ready"), (tmp_path / "emulator.log").read_text()
    return emulator


def test_serve_rejects_a_bad_node_list_with_exit_code_2(tmp_path):
    for nodes, message in (("gpu-1", "NAME=MODEL:COUNT"), ("gpu-1=Z999:1", "unknown GPU model")):
        done = subprocess.run([sys.executable, "-m", "tests.kube_emulator", "serve", "--kubeconfig",
                               str(tmp_path / "kc"), "--nodes", nodes], cwd=REPO, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
        assert not (tmp_path / "kc").exists()


def test_serve_writes_a_kubeconfig_registers_the_gpu_nodes_and_stops_on_sigterm(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    emulator = start_emulator(tmp_path, kubeconfig, "gpu-node-1=A100-SXM4-40GB:1,t4-node=T4:4")
    try:
        assert kubeconfig.stat().st_mode & 0o777 == 0o600
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["current-context"] == "emulator"
        assert config["clusters"][0]["cluster"]["server"].startswith("http://127.0.0.1:")
        from kubernetes import client, config as kube_config

        api = kube_config.new_client_from_config(config_file=str(kubeconfig))
        nodes = {n.metadata.name: n for n in client.CoreV1Api(api).list_node().items}
        assert nodes["t4-node"].status.allocatable["nvidia.com/gpu"] == "4"
        assert nodes["gpu-node-1"].metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-A100-SXM4-40GB"
        assert nodes["gpu-node-1"].metadata.labels["nvidia.com/mig.capable"] == "true"
    finally:
        emulator.send_signal(signal.SIGTERM)
        assert emulator.wait(timeout=30) == 0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_dynamic_mig_quickstart_through_real_processes(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    emulator = start_emulator(tmp_path, kubeconfig, "gpu-node-1=A100-SXM4-40GB:1")
    env = environment(tmp_path, kubeconfig)
    procs = Processes(tmp_path, env)
    kubectl = ("kubectl", "--kubeconfig", str(kubeconfig))
    runai, runai_adm, runai_lite = str(BIN / "runai"), str(BIN / "runai-adm"), str(BIN / "runai-lite")
    try:
        manifests = procs.run(runai_adm, "install", "--print", "--set", "image.repository=runai-lite", "--set", "image.tag=test")
        procs.run(*kubectl, "apply", "--validate=false", "-f", "-", stdin=manifests)
        procs.start("controller", runai_lite, "controller", "--kubeconfig", str(kubeconfig), "--image",
                    "runai-lite:test", "--resync", "0.5")
        procs.start("agent", runai_lite, "agent", "--driver", "simulated", "--simulate", "A100-SXM4-40GB:1",
                    "--kubeconfig", str(kubeconfig), "--node", "gpu-node-1", "--state-dir", str(tmp_path / "gpus"),
                    "--interval", "0.5")
        procs.run(runai, "config", "cluster", "emulator")
        procs.run(runai_adm, "project", "create", "team-a", "--deserved-gpus", "2")
        procs.run(runai, "config", "project", "team-a")
        node = lambda: json.loads(procs.run(*kubectl, "get", "node", "gpu-node-1", "-o", "json"))  # noqa: E731
        procs.wait_for("the agent's GPU report", lambda: "runai-lite/gpus" in node()["metadata"]["annotations"])
        procs.run(runai_adm, "set", "node-role", "--dynamic-mig-enabled", "gpu-node-1")

        image = "gcr.io/run-ai-demo/quickstart-cuda"
        procs.run(runai, "submit", "mig1", "-i", image, "--gpu-memory", "10GB")
        procs.run(runai, "submit", "mig2", "-i", image, "--mig-profile", "2g.10gb")
        procs.run(runai, "submit", "mig3", "-i", image, "--mig-profile", "2g.10gb")

        def jobs() -> dict[str, dict]:
            return {j["name"]: j for j in json.loads(procs.run(runai, "list", "-o", "json"))}
        procs.wait_for("three Running jobs", lambda: [j["status"] for j in jobs().values()] == ["Running"] * 3)
        listed = jobs()
        profiles = sorted(j["allocation"]["mig_profile"] for j in listed.values())
        assert profiles == ["1g.10gb", "2g.10gb", "2g.10gb"], listed
        uuids = {j["allocation"]["mig_uuid"] for j in listed.values()}
        assert len(uuids) == 3 and all(u.startswith("MIG-") for u in uuids)

        pods = json.loads(procs.run(*kubectl, "get", "pods", "-n", "runai-team-a", "-o", "json"))["items"]
        assert sorted(p["status"]["phase"] for p in pods) == ["Running"] * 3
        assert {p["spec"]["nodeName"] for p in pods} == {"gpu-node-1"}
        table = procs.run(*kubectl, "get", "pods", "-A")
        assert table.count("Running") == 3, table

        # the interactive 20G job preempts exactly one training job; its victim stops gracefully first
        procs.run(runai, "submit", "mig1-int", "-i", image, "--interactive", "--gpu-memory", "20G")

        def preempted() -> bool:
            now = jobs()
            return now.get("mig1-int", {}).get("status") == "Running" and \
                sorted(j["status"] for n, j in now.items() if n != "mig1-int") == ["Pending", "Running", "Running"]
        procs.wait_for("mig1-int Running and one training job Pending", preempted)
        assert jobs()["mig1-int"]["allocation"]["mig_profile"] == "3g.20gb"
    finally:
        codes = procs.stop()
        emulator.send_signal(signal.SIGTERM)
        emulator_code = emulator.wait(timeout=30)
    assert codes == [0, 0], procs.logs()
    assert emulator_code == 0


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_get_prints_the_api_servers_columns(kube_emulator, tmp_path):
    kube_emulator.add_node("n1", capacity={"nvidia.com/gpu": "1"}, labels={"node-role.kubernetes.io/gpu": ""})
    for name in ("a-runs", "b-rejected"):
        kube_emulator.create("pods", {"metadata": {"name": name}, "spec": {"nodeName": "n1", "containers": [
            {"name": "m", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}})
    kube_emulator.kubelet.sync()
    kubeconfig = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig")

    def kubectl(*args: str) -> list[list[str]]:
        done = subprocess.run(["kubectl", "--kubeconfig", str(kubeconfig), *args], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        return [line.split() for line in done.stdout.splitlines()]

    pods = kubectl("get", "pods")
    assert pods[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [row[:4] for row in pods[1:]] == [["a-runs", "1/1", "Running", "0"],
                                            ["b-rejected", "0/1", "UnexpectedAdmissionError", "0"]]
    wide = kubectl("get", "pods", "-o", "wide", "-A")
    assert wide[0][:2] == ["NAMESPACE", "NAME"] and "NODE" in wide[0] and wide[1][wide[0].index("NODE")] == "n1"
    nodes = kubectl("get", "nodes")
    assert nodes[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"] and nodes[1][:3] == ["n1", "Ready", "gpu"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_get_watch_prints_each_change_as_a_row(kube_emulator, tmp_path):
    kube_emulator.add_node("n1")
    kube_emulator.create("pods", {"metadata": {"name": "a"}, "spec": {"nodeName": "n1", "containers": [
        {"name": "m", "image": "i"}]}})
    kubeconfig = kube_emulator.write_kubeconfig(tmp_path / "kubeconfig")
    watching = subprocess.Popen(["kubectl", "--kubeconfig", str(kubeconfig), "get", "pods", "-w",
                                 "--request-timeout=5s"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert watching.stdout is not None
    assert watching.stdout.readline().split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert watching.stdout.readline().split()[:3] == ["a", "0/1", "Pending"]
    kube_emulator.kubelet.sync()
    assert watching.stdout.readline().split()[:3] == ["a", "1/1", "Running"]
    kube_emulator.delete("pods", "a", "default")
    assert watching.stdout.readline().split()[:3] == ["a", "1/1", "Terminating"]
    watching.wait(timeout=30)
