"""What the metrics cost a pass: `Metrics.observe_state` (the gauges' figures from a snapshot),
`observe_plan` and one scrape (`exposition`), on a cluster of the scale benchmark's size
(1,000 nodes x 8 GPUs, 10,000 jobs: fractions, whole GPUs, MIG partitions) by default.

    .venv/bin/python benchmarks/metrics_cost.py [--nodes 1000] [--jobs 10000] [--repeat 5]

Printed: the median CPU time of each call and the scrape's size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.metrics import Metrics  # noqa: E402
from runai_lite.model import (  # noqa: E402
    Allocation,
    Gpu,
    Job,
    JobStatus,
    MigInstance,
    Node,
    Plan,
    Preempt,
    Project,
    Snapshot,
)

GPUS = 8


def cluster(nodes: int, jobs: int) -> Snapshot:
    """Every tenth node an A100 with seven 1g.5gb partitions on half its GPUs, the others T4s with
    two GPUs of four 0.25 fractions and whole GPUs; as many running jobs as fit, the rest pending."""
    built, running = [], []
    for n in range(nodes):
        name = f"node-{n:04d}"
        mig = n % 10 == 0
        gpus = []
        for g in range(GPUS):
            instances = tuple(MigInstance(profile="1g.5gb", start=s, size=1, uuid=f"MIG-{n}-{g}-{s}",
                                          job=f"p/{name}-{g}-{s}") for s in range(7)) if mig and g < 4 else ()
            gpus.append(Gpu(index=g, uuid=f"GPU-{n}-{g}", model="A100-SXM4-40GB" if mig else "T4",
                            memory_mib=40536 if mig else 15360, dynamic_mig=mig, mig_enabled=mig,
                            mig_instances=instances))
            if mig and g < 4:
                running += [Allocation(kind="mig", node=name, gpu_indices=(g,), share_milli=143, mig_profile="1g.5gb",
                                       mig_start=s, mig_size=1) for s in range(7)]
            elif not mig and g < 2:
                running += [Allocation(kind="fraction", node=name, gpu_indices=(g,), share_milli=250)] * 4
            elif not mig and g < 5:
                running.append(Allocation(kind="gpu", node=name, gpu_indices=(g,)))
        built.append(Node(name=name, gpus=tuple(gpus)))
    job_list = [Job(id=f"p/j{i}", name=f"j{i}", project=f"p{i % 10}",
                    status=JobStatus.RUNNING if i < len(running) else JobStatus.PENDING,
                    allocation=running[i] if i < len(running) else None) for i in range(jobs)]
    return Snapshot(nodes=tuple(built), jobs=tuple(job_list), projects=tuple(Project(name=f"p{i}") for i in range(10)))


def cpu(call, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        call()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    snapshot = cluster(args.nodes, args.jobs)
    pending = [j.id for j in snapshot.jobs if j.status is JobStatus.PENDING]
    plan = Plan(actions=tuple(Preempt(job=j.id, reason="r") for j in snapshot.jobs[:10]),
                pending=tuple((job, "no node has 1 free whole GPUs") for job in pending))
    metrics = Metrics()
    metrics.observe_state(snapshot)
    running = sum(j.status is JobStatus.RUNNING for j in snapshot.jobs)
    print(f"cluster: {args.nodes} nodes x {GPUS} GPUs, {len(snapshot.jobs)} jobs ({running} running, "
          f"{len(pending)} pending)")
    print(f"observe_state (gauges from the snapshot): {cpu(lambda: metrics.observe_state(snapshot), args.repeat) * 1e3:.1f} ms CPU")
    print(f"observe_plan (pending reasons, preemptions, pass time): "
          f"{cpu(lambda: metrics.observe_plan(snapshot, plan, 0.5), args.repeat) * 1e3:.1f} ms CPU")
    text = metrics.exposition()
    lines = text.count(b"\n")
    print(f"scrape (exposition): {cpu(metrics.exposition, args.repeat) * 1e3:.1f} ms CPU, {len(text) / 1024:.0f} KiB, "
          f"{lines} lines")


if __name__ == "__main__":
    main()
