"""Concurrency of the embedded mode: several processes submitting, deleting and listing at once
against one home (one SQLite store, one daemon), as several terminals of one user would.

Each worker process opens its own `LocalBackend`, waits at a barrier so that all start together,
then submits its share of the jobs (fractions of a simulated A100, short commands), lists after
every few submits and deletes every fourth job it submitted. Afterwards:

- every job a submit returned is recorded exactly once, deleted if and only if it was deleted;
- no command reported an error, and in particular none said "database is locked";
- the daemon's consistency check (run after every cycle: shares ≤ 1, no double-booked GPU, …)
  found nothing, during the storm or after it.

    python -m benchmarks.concurrency_harness --processes 8 --jobs 200

prints throughput and latency per operation; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.crash_harness import daemon_environment, kill_everything
from runai_lite.backends.local import LocalBackend, local_init
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.backends.local.consistency import check_consistency
from runai_lite.errors import RunaiLiteError
from runai_lite.gpu.simulated import SimulatedDriver
from runai_lite.model import GpuRequest, JobSpec

INVENTORY = "A100-SXM4-40GB:2:mig-off"
LIST_EVERY = 3
DELETE_EVERY = 4


@dataclass
class WorkerReport:
    worker: int
    submitted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)

    def timed(self, kind: str, started: float) -> None:
        self.latencies.setdefault(kind, []).append(time.perf_counter() - started)


def _spec(worker: int, number: int) -> JobSpec:
    share = (0.25, 0.5, 0.75)[(worker + number) % 3]
    return JobSpec(name=f"w{worker}-job-{number}", project="team-a", image="busybox",
                   request=GpuRequest(fraction=share), command=("sleep", "0.2"), backoff_limit=0)


def worker(home: str, index: int, jobs: int, barrier, results) -> None:
    report = WorkerReport(index)
    backend = LocalBackend(home)
    barrier.wait()
    for number in range(jobs):
        spec = _spec(index, number)
        started = time.perf_counter()
        try:
            backend.submit(spec)
            report.timed("submit", started)
            report.submitted.append(spec.name)
            if number % LIST_EVERY == LIST_EVERY - 1:
                started = time.perf_counter()
                backend.list_jobs("team-a")
                report.timed("list", started)
            if number % DELETE_EVERY == DELETE_EVERY - 1:
                victim = report.submitted[-2]
                started = time.perf_counter()
                backend.delete_jobs("team-a", [victim])
                report.timed("delete", started)
                report.deleted.append(victim)
        except RunaiLiteError as error:
            report.errors.append(f"{type(error).__name__}: {error}")
        except Exception as error:  # anything else would reach a user as a traceback
            report.errors.append(f"TRACEBACK {type(error).__name__}: {error}")
    backend.close()
    results.put(report)


@dataclass
class Result:
    processes: int
    jobs: int
    seconds: float
    reports: list[WorkerReport]
    problems: list[str]

    def summary(self) -> str:
        ops = Counter()
        lines = []
        for kind in ("submit", "list", "delete"):
            samples = sorted(s for r in self.reports for s in r.latencies.get(kind, []))
            ops[kind] = len(samples)
            if samples:
                p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
                lines.append(f"  {kind:6} {len(samples):5d} ops  p50 {statistics.median(samples) * 1000:7.1f} ms  "
                             f"p99 {p99 * 1000:7.1f} ms  max {samples[-1] * 1000:7.1f} ms")
        total = sum(ops.values())
        head = (f"{self.processes} processes, {self.jobs} jobs: {total} operations in {self.seconds:.1f} s "
                f"({ops['submit'] / self.seconds:.1f} submits/s, {total / self.seconds:.1f} ops/s)")
        verdict = "no violation" if not self.problems else f"{len(self.problems)} VIOLATION(S)"
        return "\n".join([head, *lines, verdict, *(f"    {p}" for p in self.problems)])


def run(home: Path, processes: int, jobs: int, settle_seconds: float | None = None) -> Result:
    """The storm against a fresh home; the home's daemon and jobs are stopped afterwards. The jobs
    must all have ended within `settle_seconds` of the storm (by default: time to run them all)."""
    settle_seconds = settle_seconds if settle_seconds is not None else 30 + 0.25 * jobs
    with daemon_environment({CHECK_ENV: "1"}):  # also for a daemon a worker may have to restart
        local_init(home, simulate=INVENTORY, enforcement="none", grace_seconds=0.5)
        setup = LocalBackend(home)
        setup.create_project("team-a", 2)
        context = multiprocessing.get_context("spawn")
        barrier = context.Barrier(processes + 1)
        results = context.Queue()
        shares = [jobs // processes + (1 if i < jobs % processes else 0) for i in range(processes)]
        children = [context.Process(target=worker, args=(str(home), i, shares[i], barrier, results))
                    for i in range(processes)]
        for child in children:
            child.start()
        barrier.wait()
        started = time.perf_counter()
        reports = [results.get(timeout=600) for _ in children]
        seconds = time.perf_counter() - started
        for child in children:
            child.join()
        try:
            problems = _audit(home, setup, reports, settle_seconds)
        finally:
            setup.close()
            kill_everything(home)
    return Result(processes, jobs, seconds, sorted(reports, key=lambda r: r.worker), problems)


def _audit(home: Path, backend: LocalBackend, reports: list[WorkerReport], settle_seconds: float) -> list[str]:
    problems = [f"worker {r.worker}: {e}" for r in reports for e in r.errors]
    locked = sum("locked" in p for p in problems)
    if locked:
        problems.append(f"{locked} commands told their user the database was locked")
    deadline = time.monotonic() + settle_seconds
    while time.monotonic() < deadline and backend.store.active_jobs():
        time.sleep(0.2)
    rows = backend.store.all_jobs()
    recorded = Counter(r.name for r in rows)
    submitted = {name for r in reports for name in r.submitted}
    deleted = {name for r in reports for name in r.deleted}
    for name in sorted(submitted):
        if recorded[name] != 1:
            problems.append(f"job {name} was submitted once and is recorded {recorded[name]} times")
    for name in sorted(set(recorded) - submitted):
        problems.append(f"job {name} is recorded but no submit returned it")
    for row in rows:
        if (row.name in deleted) != (row.status == "Deleted"):
            problems.append(f"job {row.name} is {row.status} but was {'' if row.name in deleted else 'not '}deleted")
    left = [r.name for r in rows if r.status in ("Pending", "Running", "Preempted")]
    if left:
        problems.append(f"{len(left)} jobs still active after {settle_seconds:.0f} s: {', '.join(left[:5])}")
    broken = home / "invariants.log"
    if broken.exists():
        lines = dict.fromkeys(broken.read_text().splitlines())
        problems += [f"daemon check: {line.split(' ', 1)[1]}" for line in lines]
    driver = SimulatedDriver(home, faults="")
    try:
        problems += check_consistency(backend.store, driver, backend.store.config("node"))
    finally:
        driver.close()
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=200, help="in all, shared among the processes")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="runai-lite-concurrency-"))
    try:
        result = run(workdir / "home", args.processes, args.jobs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(result.summary())
    return 1 if result.problems else 0


if __name__ == "__main__":
    sys.exit(main())
