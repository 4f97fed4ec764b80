"""benchmarks/metrics_cost.py runs and prints its figures (on a small cluster: a smoke test, no timing)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "metrics_cost.py"


def test_the_script_prints_each_call_s_cost():
    done = subprocess.run([sys.executable, str(SCRIPT), "--nodes", "20", "--jobs", "300", "--repeat", "1"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert "cluster: 20 nodes x 8 GPUs, 300 jobs" in done.stdout
    for call in ("observe_state", "observe_plan", "scrape (exposition)"):
        assert call in done.stdout and "ms CPU" in done.stdout
