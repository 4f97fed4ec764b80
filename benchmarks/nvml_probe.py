"""Read-only NVML probe: what runai-lite's NVML driver sees on this machine's GPUs.

    .venv/bin/python benchmarks/nvml_probe.py      (or: python -m benchmarks.nvml_probe)

Prints each GPU (name, UUID, memory, MIG mode), the MIG profile table the driver builds (NVML's
profile IDs, sizes, memory, instance counts and placements merged over the catalog), and the MIG
instances that exist. It never creates, destroys or reconfigures anything: only the driver's read
paths are called. Listing instances and placements needs a privileged user; without it the probe
says so and goes on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.gpu.driver import DriverError  # noqa: E402
from runai_lite.gpu.nvml import NvmlDriver  # noqa: E402


def probe(driver: NvmlDriver, out: TextIO) -> None:
    started = time.perf_counter()
    gpus = driver.gpus()
    out.write(f"{len(gpus)} GPU(s), listed in {1000 * (time.perf_counter() - started):.1f} ms\n")
    for gpu in gpus:
        mig = "not supported"
        if gpu.mig_capable:
            mode = driver.mig_mode(gpu.index)
            mig = f"current={'on' if mode.current else 'off'} pending={'on' if mode.pending else 'off'}"
        out.write(f"\nGPU {gpu.index}: {gpu.name}  {gpu.uuid}  {gpu.memory_mib} MiB  MIG {mig}\n")
        started = time.perf_counter()
        model = driver.model(gpu.index)
        elapsed = 1000 * (time.perf_counter() - started)
        if not model.mig_capable:
            continue
        out.write(
            f"  model {model.name}: {model.compute_slices} compute / {model.memory_slices} memory slices, "
            f"profile table read in {elapsed:.1f} ms{'' if model.verified else ' (some placements estimated)'}\n"
        )
        out.write(f"  {'profile':<14}{'id':>4}{'compute':>9}{'mem sl.':>9}{'MiB':>8}{'max':>5}  starts\n")
        for profile in model.profiles_smallest_first():
            flag = "  (estimated)" if profile.estimated else ""
            starts = ",".join(map(str, profile.starts))
            out.write(
                f"  {profile.name:<14}{profile.id:>4}{profile.compute:>9}{profile.memory_slices:>9}"
                f"{profile.memory_mib:>8}{profile.max_instances:>5}  {{{starts}}}:{profile.memory_slices}{flag}\n"
            )
        try:
            instances = driver.mig_instances(gpu.index)
        except DriverError as error:
            out.write(f"  instances: cannot list ({error.code}): {error.message}\n")
            continue
        out.write(f"  instances: {len(instances) or 'none'}\n")
        for instance in instances:
            out.write(
                f"    GI {instance.gi_id} CI {instance.ci_id}  {instance.profile} at {instance.start}:{instance.size}"
                f"  {instance.uuid or '(no compute instance)'}\n"
            )


def main() -> int:
    try:
        driver = NvmlDriver()
    except DriverError as error:
        print(f"NVML unavailable: {error}", file=sys.stderr)
        return 1
    try:
        probe(driver, sys.stdout)
    finally:
        driver.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
