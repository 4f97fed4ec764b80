"""Process tracking: what each tracker costs per launch, and how long a kill takes to empty an
attempt that left processes behind.

    .venv/bin/python benchmarks/process_tracking.py [--launches 50] [--kills 20]

For every variant this machine offers (cgroup v2 and v1 need root and a writable hierarchy):
1. `--launches` attempts of `true`, one after another, each timed from `start` to the tracker
   saying it has EXITED (the shim's start, joining the cgroup, the job, the exit file, the cgroup
   or lock emptying): p50/p99/mean, the launch overhead of the variant;
2. `--kills` attempts that leave four `setsid` grandchildren beside their main process, each timed
   from `kill` (what delete, preemption and a draining attempt call) until nothing of the attempt
   is left: p50/p99/max.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.backends.local.paths import Home, open_private  # noqa: E402
from runai_lite.backends.local.tracking.choice import (  # noqa: E402
    TrackingUnavailableError,
    choose_tracking,
    open_tracker,
    probe_machine,
    release,
)
from runai_lite.backends.local.tracking.files import AttemptFiles  # noqa: E402
from runai_lite.backends.local.tracking.protocol import Phase, ProcessTracker, TrackingKind  # noqa: E402

LEAVES_FOUR = "for i in 1 2 3 4; do setsid sleep 600 & done; sleep 600"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.0005)


def start(tracker: ProcessTracker, home: Home, number: int, *argv: str) -> tuple[AttemptFiles, object]:
    files = AttemptFiles(home, "bench", number)
    log = open_private(home.job_log(files.name))
    try:
        return files, tracker.start(files, argv, dict(os.environ), None, log)
    finally:
        os.close(log)


def launches(tracker: ProcessTracker, home: Home, count: int) -> list[float]:
    times = []
    for number in range(1, count + 1):
        began = time.perf_counter()
        files, child = start(tracker, home, number, "true")
        wait(lambda: tracker.status(files).phase is Phase.EXITED)
        times.append(time.perf_counter() - began)
        child.wait()
        tracker.cleanup(files)
    return times


def kills(tracker: ProcessTracker, home: Home, count: int) -> list[float]:
    times = []
    for number in range(1000, 1000 + count):
        files, child = start(tracker, home, number, "sh", "-c", LEAVES_FOUR)
        wait(lambda: _count(tracker, files) >= 7)  # shim, sh, four grandchildren, sleep
        began = time.perf_counter()
        tracker.kill(files)
        wait(lambda: not tracker.alive(files))
        times.append(time.perf_counter() - began)
        child.wait()
        tracker.cleanup(files)
    return times


def _count(tracker: ProcessTracker, files: AttemptFiles) -> int:
    if tracker.kind is TrackingKind.PROCESS_TREE:
        from runai_lite.backends.local.tracking.process_tree import lock_holders

        return len(lock_holders(files.lock))
    from runai_lite.backends.local.tracking import cgroup

    return len(cgroup.procs(tracker.cgroups(files)[0]))  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=50)
    parser.add_argument("--kills", type=int, default=20)
    args = parser.parse_args()
    instance = f"bench-{os.getpid()}"
    probe = probe_machine(instance)
    root = Path(tempfile.mkdtemp(prefix="runai-lite-tracking-"))
    print(f"{'variant':<14} {'launch p50':>10} {'p99':>8} {'mean':>8}   {'kill→empty p50':>14} {'p99':>8} {'max':>8}")
    try:
        for kind in TrackingKind:
            try:
                choice = choose_tracking(kind.value, probe)
            except TrackingUnavailableError as error:
                print(f"{kind.value:<14} not available: {error.message}")
                continue
            tracker = open_tracker(choice, probe, instance)
            home = Home.at(root / kind.value)
            launch = launches(tracker, home, args.launches)
            kill = kills(tracker, home, args.kills)
            print(f"{kind.value:<14} {percentile(launch, 50) * 1000:>8.1f}ms {percentile(launch, 99) * 1000:>6.1f}ms "
                  f"{statistics.mean(launch) * 1000:>6.1f}ms   {percentile(kill, 50) * 1000:>12.1f}ms "
                  f"{percentile(kill, 99) * 1000:>6.1f}ms {max(kill) * 1000:>6.1f}ms")
    finally:
        release(probe, instance)
        shutil.rmtree(root, ignore_errors=True)
    print(f"({args.launches} launches of `true`, {args.kills} kills of an attempt with four setsid grandchildren)")


if __name__ == "__main__":
    main()
