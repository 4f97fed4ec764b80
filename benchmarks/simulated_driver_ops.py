"""How long the simulated GPU driver and the MIG agent take per call (they sit on the
submit→Running path of every MIG job in embedded mode).

    .venv/bin/python benchmarks/simulated_driver_ops.py [--gpus 8] [--rounds 200]

Prints p50/p99 in milliseconds for: listing GPUs, listing one GPU's instances, create + destroy
of one instance, a reconcile pass that changes nothing, and a reconcile pass that re-partitions
every GPU (7 × 1g → 2 × 3g and back).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.agent import reconcile  # noqa: E402
from runai_lite.gpu.simulated import SimulatedDriver  # noqa: E402


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append(1000 * (time.perf_counter() - started))
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state_dir:
        driver = SimulatedDriver(state_dir, f"A100-SXM4-40GB:{args.gpus}:mig-on", faults="")
        small = {g: [("1g.5gb", s) for s in range(7)] for g in range(args.gpus)}
        large = {g: [("3g.20gb", 0), ("3g.20gb", 4)] for g in range(args.gpus)}
        reconcile(driver, small)
        flip = iter(range(10**9))

        def create_destroy() -> None:
            made = driver.create_mig(0, "7g.40gb", 0) if not driver.mig_instances(0) else None
            if made:
                driver.destroy_mig(0, made.gi_id)

        rows = [
            ("gpus()", timed(driver.gpus, args.rounds)),
            ("mig_instances(gpu)", timed(lambda: driver.mig_instances(0), args.rounds)),
            ("reconcile, no change", timed(lambda: reconcile(driver, small), args.rounds)),
            (
                f"reconcile, re-partition {args.gpus} GPUs",
                timed(lambda: reconcile(driver, large if next(flip) % 2 == 0 else small), max(10, args.rounds // 10)),
            ),
        ]
        reconcile(driver, {0: []})
        rows.insert(2, ("create_mig + destroy_mig", timed(create_destroy, args.rounds)))
    print(f"simulated driver, {args.gpus} × A100-SXM4-40GB, {args.rounds} rounds")
    print(f"{'operation':<40}{'p50 ms':>10}{'p99 ms':>10}")
    for name, (p50, p99) in rows:
        print(f"{name:<40}{p50:>10.2f}{p99:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
