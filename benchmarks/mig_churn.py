"""MIG partition churn: lazy deallocation (the scheduler's own behaviour) against eager teardown.

A dynamic-MIG cluster (default 64 A100-SXM4-40GB + 64 H100-SXM5-80GB GPUs, 8 per node; with
`--fraction-gpus`, plus plain GPUs shared by fractions: a mixed cluster) is fed the
openb trace's GPU-sharing pods as GPU-memory requests (share x 40 GB, the smaller GPU's memory), in
the order of their creation times, each leaving at its deletion time. Arrival times are divided by
`--time-scale` (durations kept) so that the cluster is busy: at real speed the trace never runs more
than 22 sharing pods at once. LS/Guaranteed pods are interactive jobs (they may preempt), the rest
training jobs; one project deserves every GPU.

Every event runs one `runai_lite.scheduler.plan` cycle and applies it with `apply_plan`. The two
modes differ only when a job ends:
- lazy: its partition stays, idle, until the scheduler reuses it or destroys it to make room;
- eager: its partition is destroyed at once (counted as a destroy), and so is any partition a plan
  leaves idle (a preempted job's, when the preemptor did not need its slices): eager mode never
  has an idle partition. Otherwise the same scheduler decides.

Reported per mode: partitions created and destroyed, partitions left alive at the end (counted
in the operations as the destroys they will need, for both modes), acceptance % (jobs that started before they
left), served % (jobs that started on arrival and ran until they left, never preempted), jobs
preempted, and the time plan() took. With `--bound`, beside them: the LP bound on the served % any
scheduler could reach knowing every arrival (benchmarks/mig_bound.py, which says why it is valid
and why acceptance itself has no useful bound).

    .venv/bin/python benchmarks/mig_churn.py --time-scale 50
    .venv/bin/python benchmarks/mig_churn.py --a100 32 --h100 32 --fraction-gpus 64 --time-scale 120 --bound
    .venv/bin/python benchmarks/mig_churn.py --pods path/to/pods.csv --limit 500 --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.mig_bound import GpuKind, Stay, served_bound_pct  # noqa: E402
from benchmarks.openb_trace import DEFAULT_PODS, TracePod  # noqa: E402
from runai_lite.gpu.catalog import default_catalog  # noqa: E402
from runai_lite.model import (  # noqa: E402
    MILLI,
    CreateMig,
    DestroyMig,
    Gpu,
    GpuRequest,
    Job,
    JobStatus,
    JobType,
    Node,
    Preempt,
    Project,
    Snapshot,
)
from runai_lite.units import MiB  # noqa: E402

A100 = ("A100-SXM4-40GB", 40536)
H100 = ("H100-SXM5-80GB", 81559)
FRACTION = ("V100-SXM2-32GB", 32768)  # plain GPUs shared by fractions in a mixed cluster
REFERENCE_MEMORY_MIB = A100[1]
INTERACTIVE_QOS = {"LS", "Guaranteed"}


@dataclass
class Tally:
    created: int = 0
    destroyed: int = 0
    left: int = 0  # partitions alive when the replay ends: each is one more destroy, some day
    preempted: int = 0
    started: set[str] = field(default_factory=set)
    started_on_arrival: set[str] = field(default_factory=set)
    ever_preempted: set[str] = field(default_factory=set)
    jobs: int = 0
    plans: int = 0
    plan_seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "partitions_created": self.created,
            "partitions_destroyed": self.destroyed,
            "partitions_left": self.left,
            # Every partition either mode leaves behind counted as the destroy it will need, so
            # lazy mode's idle partitions are not a saving that eager teardown pays for.
            "create_destroy_ops": self.created + self.destroyed + self.left,
            "acceptance_pct": round(100 * len(self.started) / self.jobs, 2) if self.jobs else None,
            # Started in the plan of its arrival and never preempted: ran until it left.
            "served_pct": round(100 * len(self.started_on_arrival - self.ever_preempted) / self.jobs, 2) if self.jobs else None,
            "jobs": self.jobs,
            "jobs_preempted": self.preempted,
            "plans": self.plans,
            "plan_ms_mean": round(1000 * self.plan_seconds / self.plans, 2) if self.plans else None,
        }


@dataclass(frozen=True, slots=True)
class Arrival:
    job: Job
    at: float
    leaves: float


def sharing_jobs(pods: list[TracePod], qos: dict[str, str], time_scale: float, limit: int) -> list[Arrival]:
    """The trace's GPU-sharing pods as memory-request jobs, by creation time."""
    sharing = [p for p in pods if p.demand.is_fraction and p.creation_time is not None]
    sharing.sort(key=lambda p: (p.creation_time, p.name))
    if limit:
        sharing = sharing[:limit]
    arrivals = []
    for i, pod in enumerate(sharing):
        memory_mib = -(-pod.demand.share_milli * REFERENCE_MEMORY_MIB // MILLI)
        kind = JobType.INTERACTIVE if qos.get(pod.name) in INTERACTIVE_QOS else JobType.TRAIN
        at = pod.creation_time / time_scale
        duration = max((pod.deletion_time or pod.creation_time) - pod.creation_time, 1.0)
        job = Job(id=f"j{i:05d}", name=pod.name, project="trace", type=kind, submitted_at=at,
                  request=GpuRequest(memory_bytes=memory_mib * MiB))
        arrivals.append(Arrival(job, at, at + duration))
    return arrivals


def mig_cluster(a100: int, h100: int, per_node: int, fraction: int = 0) -> tuple[Node, ...]:
    """Dynamic-MIG A100 and H100 nodes, and `fraction` plain GPUs shared by fractions."""
    nodes = []
    for label, (model, memory), count, mig in (("a100", A100, a100, True), ("h100", H100, h100, True),
                                               ("frac", FRACTION, fraction, False)):
        for n in range(-(-count // per_node)):
            gpus = tuple(Gpu(index=g, uuid=f"GPU-{label}-{n:03d}-{g}", model=model, memory_mib=memory,
                             dynamic_mig=mig, mig_enabled=mig)
                         for g in range(min(per_node, count - n * per_node)))
            nodes.append(Node(name=f"{label}-{n:03d}", gpus=gpus))
    return tuple(nodes)


def gpu_kinds(a100: int, h100: int, fraction: int) -> list[GpuKind]:
    catalog = default_catalog()
    return [GpuKind(A100[0], a100, A100[1], catalog.get(A100[0])), GpuKind(H100[0], h100, H100[1], catalog.get(H100[0])),
            GpuKind(FRACTION[0], fraction, FRACTION[1])]


def stays(arrivals: list[Arrival]) -> list[Stay]:
    return [Stay(-(-a.job.request.memory_bytes // MiB), a.at, a.leaves) for a in arrivals if a.job.request]


def _finish(snapshot: Snapshot, ending: set[str], eager: bool, tally: Tally) -> Snapshot:
    """Jobs that reached their deletion time leave: running ones free their partition (idle, or
    destroyed at once when eager); pending ones never ran."""
    partitions = {(j.allocation.node, j.allocation.gpu_indices[0], j.allocation.mig_start)
                  for j in snapshot.jobs if j.id in ending and j.allocation and j.allocation.kind == "mig"}
    nodes = []
    for node in snapshot.nodes:
        gpus = []
        for gpu in node.gpus:
            kept = []
            for inst in gpu.mig_instances:
                if (node.name, gpu.index, inst.start) in partitions:
                    if eager:
                        tally.destroyed += 1
                        continue
                    inst = inst.model_copy(update={"job": None})
                kept.append(inst)
            gpus.append(gpu.model_copy(update={"mig_instances": tuple(kept)}))
        nodes.append(node.model_copy(update={"gpus": tuple(gpus)}))
    jobs = tuple(j for j in snapshot.jobs if j.id not in ending)
    return snapshot.model_copy(update={"nodes": tuple(nodes), "jobs": jobs})


def _tear_down_idle(snapshot: Snapshot, tally: Tally) -> Snapshot:
    """Eager teardown of the partitions a plan left idle: those of preempted jobs whose slices the
    preemptor did not need (they go back to Pending and will ask again). No partition outlives
    its job's hold, so eager mode never has an idle partition to reuse or destroy."""
    nodes = []
    for node in snapshot.nodes:
        gpus = []
        for gpu in node.gpus:
            kept = tuple(inst for inst in gpu.mig_instances if inst.job is not None)
            tally.destroyed += len(gpu.mig_instances) - len(kept)
            gpus.append(gpu.model_copy(update={"mig_instances": kept}) if len(kept) < len(gpu.mig_instances) else gpu)
        nodes.append(node.model_copy(update={"gpus": tuple(gpus)}))
    return snapshot.model_copy(update={"nodes": tuple(nodes)})


def replay(arrivals: list[Arrival], nodes: tuple[Node, ...], eager: bool) -> Tally:
    from runai_lite.scheduler import apply_plan, plan

    tally = Tally(jobs=len(arrivals))
    events: dict[float, tuple[list[Job], set[str]]] = {}
    for a in arrivals:
        events.setdefault(a.at, ([], set()))[0].append(a.job)
        events.setdefault(a.leaves, ([], set()))[1].add(a.job.id)
    gpus = sum(len(n.gpus) for n in nodes)
    snapshot = Snapshot(nodes=nodes, projects=(Project(name="trace", deserved_gpus=gpus),))
    for at in sorted(events):
        arriving, ending = events[at]
        if ending:
            snapshot = _finish(snapshot, ending, eager, tally)
        snapshot = snapshot.model_copy(update={"jobs": snapshot.jobs + tuple(arriving)})
        start = time.process_time()
        decided = plan(snapshot)
        tally.plan_seconds += time.process_time() - start
        tally.plans += 1
        tally.created += len(decided.of_type(CreateMig))
        tally.destroyed += len(decided.of_type(DestroyMig))
        preempted = decided.of_type(Preempt)
        tally.preempted += len(preempted)
        tally.ever_preempted.update(p.job for p in preempted)
        snapshot = apply_plan(snapshot, decided, now=at)
        if eager:
            snapshot = _tear_down_idle(snapshot, tally)
        running = {j.id for j in snapshot.jobs if j.status is JobStatus.RUNNING}
        tally.started.update(running)
        tally.started_on_arrival.update(j.id for j in arriving if j.id in running)
    tally.left = sum(len(gpu.mig_instances) for node in snapshot.nodes for gpu in node.gpus)
    return tally


def read_qos(path: Path) -> dict[str, str]:
    import csv

    with open(path, newline="") as f:
        return {row["name"]: (row.get("qos") or "") for row in csv.DictReader(f)}


def main(argv: list[str] | None = None) -> int:
    from benchmarks.openb_trace import read_pods

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=Path, default=DEFAULT_PODS, help="pod list CSV with creation/deletion times")
    parser.add_argument("--a100", type=int, default=64, help="A100-SXM4-40GB GPUs")
    parser.add_argument("--h100", type=int, default=64, help="H100-SXM5-80GB GPUs")
    parser.add_argument("--fraction-gpus", type=int, default=0,
                        help=f"plain {FRACTION[0]} GPUs shared by fractions, beside the MIG ones (a mixed cluster)")
    parser.add_argument("--gpus-per-node", type=int, default=8)
    parser.add_argument("--time-scale", type=float, default=50.0, help="divide arrival times by this (durations kept)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N sharing pods")
    parser.add_argument("--modes", default="lazy,eager")
    parser.add_argument("--bound", action="store_true",
                        help="also the LP bound on the served %% any scheduler could reach (benchmarks/mig_bound.py; needs SciPy)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    for name in ("a100", "h100", "fraction_gpus", "limit"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(args, name)}")
    if args.time_scale <= 0 or args.gpus_per_node <= 0:
        parser.error("--time-scale and --gpus-per-node must be positive")
    if not args.pods.exists():
        parser.error(f"{args.pods} does not exist; pass --pods (the openb trace is not in this repository)")
    arrivals = sharing_jobs(read_pods(args.pods), read_qos(args.pods), args.time_scale, args.limit)
    nodes = mig_cluster(args.a100, args.h100, args.gpus_per_node, args.fraction_gpus)
    results = {mode: replay(arrivals, nodes, eager=(mode == "eager")).as_dict() for mode in args.modes.split(",")}
    bound = served_bound_pct(stays(arrivals), gpu_kinds(args.a100, args.h100, args.fraction_gpus)) if args.bound else None
    if "lazy" in results and "eager" in results and results["eager"]["create_destroy_ops"]:
        saved = 1 - results["lazy"]["create_destroy_ops"] / results["eager"]["create_destroy_ops"]
        results["lazy"]["ops_saved_vs_eager_pct"] = round(100 * saved, 1)
    if args.json:
        print(json.dumps({"gpus": {A100[0]: args.a100, H100[0]: args.h100, FRACTION[0]: args.fraction_gpus},
                          "time_scale": args.time_scale, "jobs": len(arrivals), "modes": results,
                          "served_bound_pct": bound}))
        return 0
    print(f"MIG churn: {args.a100} A100-40GB + {args.h100} H100-80GB dynamic-MIG GPUs"
          f"{f' + {args.fraction_gpus} {FRACTION[0]} fraction GPUs' if args.fraction_gpus else ''}, "
          f"{len(arrivals)} sharing jobs, arrivals x{args.time_scale:g}")
    print(f"{'mode':<8}{'created':>9}{'destroyed':>11}{'left':>6}{'ops':>7}{'accept %':>10}{'served %':>10}"
          f"{'preempted':>11}{'plan ms':>9}")
    for mode, r in results.items():
        print(f"{mode:<8}{r['partitions_created']:>9}{r['partitions_destroyed']:>11}{r['partitions_left']:>6}"
              f"{r['create_destroy_ops']:>7}{r['acceptance_pct']:>10.2f}{r['served_pct']:>10.2f}"
              f"{r['jobs_preempted']:>11}{r['plan_ms_mean']:>9.1f}")
    if bound is not None:
        print(f"{'bound':<8}{'':>9}{'':>11}{'':>6}{'':>7}{'':>10}{bound:>10.2f}   (LP: the most any scheduler could serve)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
