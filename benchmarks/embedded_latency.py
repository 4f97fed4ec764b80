"""Embedded-mode latency: submit → the job's first instruction for fraction jobs, and `runai list`
with 1,000 jobs.

Runs a real daemon on a simulated machine in a temporary home:

    .venv/bin/python benchmarks/embedded_latency.py [--jobs 100] [--store-jobs 1000] [--list-runs 20]

1. submits `--jobs` fraction jobs (`--gpu 0.125`) one after another, with the earlier jobs still
   running, each timed from just before `submit` to the job's first instruction: the job's
   command writes the wall-clock time to a file (`date +%s.%N`, then `exec sleep 600`), read back
   by polling every 2 ms. The time until the store says Running is printed beside it: the daemon
   writes Running before it starts the process, so that one stops the clock too early;
2. fills the store up to `--store-jobs` jobs (the rest as finished jobs, written directly) and times
   the real CLI, `runai list -A` in a fresh process (start-up included), `--list-runs` times.

Targets (issue 3): submit → Running p99 ≤ 0.5 s; `runai list` ≤ 0.3 s.
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

from runai_lite.backends.local import LocalBackend, daemon_stop, local_init  # noqa: E402
from runai_lite.model import GpuRequest, JobSpec, JobStatus  # noqa: E402

SIMULATED = "A100-SXM4-40GB:16:mig-off"
CLI = "from runai_lite.cli.runai import main; main()"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def fraction_job(name: str, stamp: Path) -> JobSpec:
    # The job's own first instruction records when it ran (sh and date: a millisecond or two).
    return JobSpec(name=name, project="bench", image="bench", request=GpuRequest(fraction=0.125),
                   command=("sh", "-c", 'date +%s.%N > "$1.tmp" && mv "$1.tmp" "$1"; exec sleep 600', "sh", str(stamp)))


def time_to_start(backend: LocalBackend, name: str, stamps: Path) -> tuple[float, float]:
    """(seconds to the job's first instruction, seconds until the store said Running)."""
    stamp = stamps / name
    start = time.time()
    backend.submit(fraction_job(name, stamp))
    running_after = None
    while True:
        now = time.time()
        if running_after is None:
            row = backend.store.live_job("bench", name)
            if row is not None and row.status == JobStatus.RUNNING:
                running_after = now - start
        if stamp.exists():
            return float(stamp.read_text()) - start, running_after if running_after is not None else now - start
        if now - start > 30:
            row = backend.store.live_job("bench", name)
            raise SystemExit(f"{name} did not start within 30 s: {row.pending_reason if row else 'missing'}")
        time.sleep(0.002)


def fill_store(backend: LocalBackend, total: int) -> int:
    present = len(backend.store.all_jobs())
    now = time.time()
    with backend.store.write() as conn:
        for i in range(max(0, total - present)):
            spec = JobSpec(name=f"done-{i}", project="bench", image="bench", request=GpuRequest(fraction=0.5),
                           command=("true",))
            row = backend.store.insert_job(conn, spec, "bench", "process", now - 3600 + i)
            backend.store.update_job(conn, row.id, status="Succeeded", exit_code=0, started_at=now - 3600 + i,
                                     finished_at=now - 3500 + i, attempts=1)
    return len(backend.store.all_jobs())


def time_cli_list(home: Path, runs: int) -> list[float]:
    env = {**os.environ, "RUNAI_LITE_HOME": str(home)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", CLI, "list", "-A"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"runai list failed: {done.stderr}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--store-jobs", type=int, default=1000)
    parser.add_argument("--list-runs", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="rl-bench-"))
    try:
        local_init(home, simulate=SIMULATED, grace_seconds=1)
        backend = LocalBackend(home)
        backend.create_project("bench", 16)
        stamps = home / "stamps"
        stamps.mkdir()
        time_to_start(backend, "warm-up", stamps)
        timed = [time_to_start(backend, f"frac-{i}", stamps) for i in range(args.jobs)]
        for label, latencies in (("submit -> first instruction", [t[0] for t in timed]),
                                 ("submit -> store says Running", [t[1] for t in timed])):
            print(f"{label}, {len(latencies)} fraction jobs (--gpu 0.125) on {SIMULATED}:")
            print(f"  p50 {percentile(latencies, 50) * 1000:.0f} ms   p99 {percentile(latencies, 99) * 1000:.0f} ms   "
                  f"max {max(latencies) * 1000:.0f} ms   mean {statistics.mean(latencies) * 1000:.0f} ms   "
                  f"(target p99 <= 500 ms)")
        total = fill_store(backend, args.store_jobs)
        in_process = []
        for _ in range(args.list_runs):
            start = time.perf_counter()
            backend.list_jobs(None)
            in_process.append(time.perf_counter() - start)
        cli = time_cli_list(home, args.list_runs)
        print(f"runai list -A with {total} jobs in the store ({args.list_runs} runs, fresh CLI process each):")
        print(f"  p50 {percentile(cli, 50) * 1000:.0f} ms   p99 {percentile(cli, 99) * 1000:.0f} ms   "
              f"(target <= 300 ms; LocalBackend.list_jobs alone: p50 {percentile(in_process, 50) * 1000:.0f} ms)")
        backend.delete_jobs("bench", None)
        backend.close()
    finally:
        daemon_stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
