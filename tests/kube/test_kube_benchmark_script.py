"""The controller-pass benchmark runs on a tiny cluster and prints its JSON shape."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# How many requests a pass makes is a figure, not a promise: on a loaded machine the watch cache
# falls back to listing when its streams lag (test_kube_cache checks the idle read itself).
@pytest.mark.parametrize("reader", ["list", "watch"])
def test_the_controller_pass_benchmark_binds_and_reports_its_figures(reader):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kube_controller_pass.py"),
                           "--nodes", "2", "--gpus", "2", "--jobs", "4", "--reader", reader, "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["bound"] == 4  # 1 + 0.5 + 0.25 + 2 GPUs on 4
    assert out["settle_passes"] >= 1
    assert out["first_pass_requests"] > 0 and out["steady_pass_requests"] >= 0
