"""The controller-pass benchmark runs on a tiny cluster and prints its JSON shape."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("reader, idle_requests", [
    ("list", 5),  # five lists (Allocation objects too), no write: an idle pass does not touch the Lease
    ("watch", 0),  # the watch-fed cache: an idle pass makes no request at all
])
def test_the_controller_pass_benchmark_binds_and_reports_its_figures(reader, idle_requests):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kube_controller_pass.py"),
                           "--nodes", "2", "--gpus", "2", "--jobs", "4", "--reader", reader, "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["bound"] == 4  # 1 + 0.5 + 0.25 + 2 GPUs on 4
    assert out["steady_pass_requests"] == idle_requests
    assert out["settle_passes"] >= 1 and out["first_pass_requests"] > out["steady_pass_requests"]
