"""The Kubernetes API emulator's costs: start-up in-process and as a process, and a kubelet pass that
admits many pods with device accounting.

    .venv/bin/python benchmarks/kube_emulator_fidelity.py [--starts 20] [--pods 200]

1. `KubeEmulator().start()` + `stop()`, `--starts` times (p50, max);
2. `python -m tests.kube_emulator serve` until it prints `ready` (interpreter start-up and imports
   included), 3 times;
3. one `kubelet.sync()` admitting `--pods` bound pods that each ask for one `nvidia.com/gpu` on nodes
   of 8 GPUs (device plugin, CPU/memory, affinity and taint checks), and a second, idle one.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.kube_emulator import KubeEmulator  # noqa: E402


def in_process(starts: int) -> list[float]:
    times = []
    for _ in range(starts):
        t = time.perf_counter()
        KubeEmulator().start().stop()
        times.append(time.perf_counter() - t)
    return times


def as_process(runs: int) -> list[float]:
    times = []
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            process = subprocess.Popen([sys.executable, "-m", "tests.kube_emulator", "serve", "--kubeconfig",
                                        f"{tmp}/kubeconfig", "--nodes", "gpu-node-1=A100-SXM4-40GB:1"],
                                       cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
            assert process.stdout is not None and process.stdout.readline().startswith("ready")
            times.append(time.perf_counter() - t)
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return times


def admission(pods: int) -> tuple[float, float, int]:
    with KubeEmulator() as kube:
        nodes = (pods + 7) // 8
        for n in range(nodes):
            kube.add_node(f"n{n}", capacity={"nvidia.com/gpu": "8"})
        for i in range(pods):
            kube.create("pods", {"metadata": {"name": f"p{i}"}, "spec": {"nodeName": f"n{i % nodes}", "containers": [
                {"name": "m", "image": "i", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"},
                                                          "limits": {"nvidia.com/gpu": "1"}}}]}})
        t = time.perf_counter()
        kube.kubelet.sync()
        first = time.perf_counter() - t
        t = time.perf_counter()
        kube.kubelet.sync()
        idle = time.perf_counter() - t
        running = sum(1 for p in kube.objects("pods") if p["status"]["phase"] == "Running")
    return first, idle, running


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=20)
    parser.add_argument("--pods", type=int, default=200)
    args = parser.parse_args()
    times = in_process(args.starts)
    print(f"in-process start+stop: p50 {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
          f"({args.starts} runs)")
    times = as_process(3)
    print(f"serve until 'ready': p50 {statistics.median(times):.2f} s, max {max(times):.2f} s (3 runs)")
    first, idle, running = admission(args.pods)
    print(f"kubelet.sync admitting {args.pods} GPU pods: {first:.2f} s ({running} Running); idle pass {idle:.2f} s")


if __name__ == "__main__":
    main()
