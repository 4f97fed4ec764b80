"""How long one `scheduler.plan()` call takes on a large cluster (default 100 nodes x 8 GPUs, 1,000 jobs).

    .venv/bin/python benchmarks/scheduler_plan.py [--nodes 100] [--gpus 8] [--jobs 1000] [--runs 5]

Scenarios, each on a cluster of ordinary GPUs and on one where half the nodes are dynamic-MIG A100s:
  empty   every job pending on an empty cluster (the first cycle after a restart);
  steady  70% of the jobs placed and running (by an earlier plan), the rest pending;
  preempt the cluster full of running training jobs, 100 interactive jobs arriving that must
          preempt (the costliest path).
Prints the best and median wall time of `--runs` calls, and the best CPU time (steadier on a busy
machine); the daemon calls plan() on every change.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.gpu.requests import request_from_flags  # noqa: E402
from runai_lite.model import Bind, Gpu, Job, JobStatus, JobType, Node, Preempt, Project, Snapshot  # noqa: E402
from runai_lite.scheduler import apply_plan, plan  # noqa: E402

FLAGS = [{"gpu": "1"}, {"gpu": "0.5"}, {"gpu": "0.25"}, {"gpu_memory": "10GB"}, {"gpu_memory": "5GB"},
         {"mig_profile": "1g.5gb"}, {"mig_profile": "2g.10gb"}, {"mig_profile": "3g.20gb"}, {"gpu": "2"}]
TYPES = [JobType.TRAIN] * 6 + [JobType.INTERACTIVE_PREEMPTIBLE, JobType.INTERACTIVE]
PROJECTS = 10


def nodes(count: int, gpus: int, mig_share: float) -> tuple[Node, ...]:
    built = []
    for n in range(count):
        mig = n < count * mig_share
        model, memory = ("A100-SXM4-40GB", 40536) if mig else ("V100-SXM2-32GB", 32510)
        built.append(Node(name=f"node-{n:03d}", cpu_milli=64000, memory_mib=512000, gpus=tuple(
            Gpu(index=i, uuid=f"GPU-{n}-{i}", model=model, memory_mib=memory, dynamic_mig=mig, mig_enabled=mig)
            for i in range(gpus))))
    return tuple(built)


def jobs(count: int, rng: random.Random, types=TYPES, flags=FLAGS, prefix: str = "j", start: int = 0) -> list[Job]:
    return [Job(id=f"{prefix}{k:05d}", name=f"{prefix}{k:05d}", project=f"p{rng.randrange(PROJECTS)}",
                type=rng.choice(types), request=request_from_flags(**rng.choice(flags)), submitted_at=start + k,
                cpu_milli=1000, memory_mib=4000) for k in range(count)]


def scenarios(args, mig_share: float) -> dict[str, Snapshot]:
    rng = random.Random(0)
    deserved = args.nodes * args.gpus / PROJECTS
    base = Snapshot(nodes=nodes(args.nodes, args.gpus, mig_share),
                    projects=tuple(Project(name=f"p{i}", deserved_gpus=deserved) for i in range(PROJECTS)))
    work = jobs(args.jobs, rng)
    empty = base.model_copy(update={"jobs": tuple(work)})
    first = int(args.jobs * 0.7)
    placed = apply_plan(base.model_copy(update={"jobs": tuple(work[:first])}),
                        plan(base.model_copy(update={"jobs": tuple(work[:first])})), now=1.0)
    steady = placed.model_copy(update={"jobs": (*placed.jobs, *work[first:])})
    # Fill the cluster with training work spread over every project, then 100 interactive jobs.
    filler = jobs(args.nodes * args.gpus * 2, rng, types=[JobType.TRAIN], flags=[{"gpu": "1"}, {"gpu": "0.5"},
                                                                              {"mig_profile": "3g.20gb"}])
    full = apply_plan(base.model_copy(update={"jobs": tuple(filler)}),
                      plan(base.model_copy(update={"jobs": tuple(filler)})), now=1.0)
    running = tuple(j for j in full.jobs if j.status is JobStatus.RUNNING)
    arriving = jobs(100, rng, types=[JobType.INTERACTIVE], prefix="i", start=10**6)
    preempt = full.model_copy(update={"jobs": (*running, *arriving)})
    return {"empty": empty, "steady": steady, "preempt": preempt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"plan() on {args.nodes} nodes x {args.gpus} GPUs")
    for mig_share in (0.0, 0.5):
        for name, snapshot in scenarios(args, mig_share).items():
            times, cpu = [], []
            for _ in range(args.runs):
                started, started_cpu = time.perf_counter(), time.process_time()
                result = plan(snapshot)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
            running = sum(1 for j in snapshot.jobs if j.status is JobStatus.RUNNING)
            waiting = len(snapshot.jobs) - running
            print(f"  {mig_share:>4.0%} MIG nodes  {name:<8} {running:>5} running {waiting:>5} pending"
                  f"  -> {len(result.of_type(Bind)):>4} bound {len(result.of_type(Preempt)):>4} preempted"
                  f"  wall best {min(times) * 1000:6.1f} ms median {statistics.median(times) * 1000:6.1f} ms"
                  f"  cpu best {min(cpu) * 1000:6.1f} ms")


if __name__ == "__main__":
    main()
