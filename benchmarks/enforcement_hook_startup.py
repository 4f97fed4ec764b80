"""What the framework hook costs a job's Python at start-up, and when it imports torch.

Runs `python -c pass` (and `python -c "import torch"` when `--python` has torch) many times with and
without the hook's environment (`job_environment("framework", ...)`) and prints the medians.

    .venv/bin/python benchmarks/enforcement_hook_startup.py --runs 40
    .venv/bin/python benchmarks/enforcement_hook_startup.py --python /path/to/python-with-torch
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.enforcement import job_environment  # noqa: E402


def run_ms(python: str, program: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([python, "-c", program], env=env, check=True, capture_output=True)
    return (time.perf_counter() - start) * 1000


def medians_ms(python: str, program: str, envs: list[dict[str, str]], runs: int) -> list[float]:
    """Median wall time per environment; runs alternate so that load from elsewhere hits all alike."""
    times: list[list[float]] = [[] for _ in envs]
    for _ in range(runs):
        for env, samples in zip(envs, times, strict=True):
            samples.append(run_ms(python, program, env))
    return [statistics.median(samples) for samples in times]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    plain = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "RUNAI_", "XLA_"))}
    hooked = job_environment("framework", memory_limit_mib=4096, share_milli=250).apply(plain)
    has_torch = subprocess.run([args.python, "-c", "import torch"], env=plain, capture_output=True).returncode == 0
    programs = [("python -c pass", "pass")] + ([("import torch", "import torch")] if has_torch else [])
    print(f"{args.python}, median of {args.runs} runs")
    for name, program in programs:
        without, with_hook = medians_ms(args.python, program, [plain, hooked], args.runs)
        print(f"{name:<16} without hook {without:7.1f} ms   with hook {with_hook:7.1f} ms   "
              f"difference {with_hook - without:+6.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
