"""System mode beside personal mode: submit → Running and `runai list`, on the same simulated machine.

    sudo .venv/bin/python benchmarks/system_mode.py [--jobs 40] [--list-runs 15]

For each mode, on a fresh daemon (a temporary `RUNAI_LITE_HOME` for personal mode, a temporary
`RUNAI_LITE_SYSTEM_DIR` for the machine-wide daemon behind its socket):
1. submits `--jobs` fraction jobs (`--gpu 0.125`, `sleep 600`) one after another through
   `LocalBackend` (the client a user's `runai` builds: in system mode every call is a request on
   the socket), each timed from just before `submit` to the moment `describe` says Running (polled
   every 5 ms through the same client), and prints p50/p99;
2. times the real CLI, `runai list -A` in a fresh process (start-up included), `--list-runs` times.

Needs root (the system daemon runs as root). Figures go to docs/reliability.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.backends.local import LocalBackend  # noqa: E402
from runai_lite.backends.local.control import daemon_stop, local_init  # noqa: E402
from runai_lite.backends.local.paths import HOME_ENV, SYSTEM_DIR_ENV  # noqa: E402
from runai_lite.model import GpuRequest, JobSpec, JobStatus  # noqa: E402

SIMULATED = "A100-SXM4-40GB:8:mig-off"
CLI = "from runai_lite.cli.runai import main; main()"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def time_to_running(backend: LocalBackend, name: str) -> float:
    spec = JobSpec(name=name, project="bench", image="bench", request=GpuRequest(fraction=0.125),
                   command=("sleep", "600"))
    start = time.perf_counter()
    backend.submit(spec)
    while backend.get_job("bench", name).status != JobStatus.RUNNING:
        if time.perf_counter() - start > 30:
            raise SystemExit(f"{name} did not start within 30 s")
        time.sleep(0.005)
    return time.perf_counter() - start


def measure(mode: str, jobs: int, list_runs: int) -> dict[str, float]:
    system = mode == "system"
    backend = LocalBackend()
    assert backend.system == system
    backend.create_project("bench", 8)
    try:
        latencies = [time_to_running(backend, f"job-{i}") for i in range(jobs)]
        lists = []
        for _ in range(list_runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", CLI, "list", "-A"], check=True, stdout=subprocess.DEVNULL)
            lists.append(time.perf_counter() - start)
    finally:
        backend.delete_jobs("bench", None)
        backend.close()
    return {"p50": statistics.median(latencies), "p99": percentile(latencies, 99), "list": statistics.median(lists)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--list-runs", type=int, default=15)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the machine-wide daemon runs as root")
    scratch = Path(tempfile.mkdtemp(prefix="runai-lite-bench-"))
    results = {}
    try:
        os.environ[HOME_ENV] = str(scratch / "personal")
        local_init(scratch / "personal", simulate=SIMULATED, grace_seconds=1.0)
        results["personal"] = measure("personal", args.jobs, args.list_runs)
        daemon_stop(scratch / "personal")
        del os.environ[HOME_ENV]
        os.environ[SYSTEM_DIR_ENV] = str(scratch / "system")
        local_init(simulate=SIMULATED, grace_seconds=1.0, system=True)
        results["system"] = measure("system", args.jobs, args.list_runs)
        daemon_stop(system=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.jobs} fraction jobs one after another; `runai list -A` in a fresh process, median of "
          f"{args.list_runs}")
    print(f"{'mode':<10}{'submit→Running p50':>20}{'p99':>10}{'runai list':>12}")
    for mode, r in results.items():
        print(f"{mode:<10}{r['p50'] * 1000:>17.0f} ms{r['p99'] * 1000:>7.0f} ms{r['list'] * 1000:>9.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
