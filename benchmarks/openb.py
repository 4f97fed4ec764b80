"""Replay the FGD paper's experiment (Weng et al., USENIX ATC '23) on the openb trace with
runai-lite's own placement code (`make_policy` + `FractionCluster`, as the scheduler uses them).

Protocol (the artifact's, hkust-adsl/kubernetes-scheduler-simulator): pods sorted by name and
shuffled per seed, then pods sampled with replacement appended until 130% of the cluster's GPU
capacity has arrived; pods are placed one at a time and never leave; failed pods are not retried.
After every pod the arrived and the allocated GPU share are logged; allocation % is averaged per
integer arrival % (empty bins borrow from +-1). Nodes get the artifact's random name prefixes per
seed, and ties go to the smallest name, as its scheduler does.

    .venv/bin/python benchmarks/openb.py --policy fgd,default --seeds 42,43,44
    .venv/bin/python benchmarks/openb.py --policy default --node-count 10000 --seeds 42 --json
"""

from __future__ import annotations

import os

# "One core": keep numpy's BLAS from fanning out (decision time is measured as this process's CPU time).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb_trace import (  # noqa: E402
    DEFAULT_NODES,
    DEFAULT_PODS,
    TraceNode,
    TracePod,
    cluster_of,
    read_nodes,
    read_pods,
    read_published,
    replicate,
)
from benchmarks.openb_bound import bound_curve  # noqa: E402
from benchmarks.openb_mixes import MIX_NAMES, mix  # noqa: E402
from benchmarks.openb_replay import PATHS, job_of  # noqa: E402
from runai_lite.model import MILLI  # noqa: E402
from runai_lite.scheduler.placement import Demand, demand_mix  # noqa: E402

REPORT_POINTS = (85, 90, 95, 100, 110, 120, 130)
PAPER_POLICIES = ("random", "dotprod", "gpu-clustering", "gpu-packing", "best-fit", "fgd")
TUNE_RATIO = 1.3


@dataclass
class Run:
    curve: dict[int, float]  # arrival % -> allocation %
    pods: int
    decision_seconds: float


def arrival_sequence(pods: list[TracePod], capacity_milli: int, seed: int) -> list[Demand]:
    """The artifact's workload: shuffled originals, then draws with replacement while the total
    request stays within 130% of capacity (its stop test compares the per-GPU share, kept here)."""
    rng = random.Random(seed)
    ordered = sorted(pods, key=lambda p: p.name)
    rng.shuffle(ordered)
    sequence = [p.demand for p in ordered]
    total = sum(p.gpu_milli_total for p in pods)
    target = TUNE_RATIO * capacity_milli
    while True:
        pod = pods[rng.randrange(len(pods))]
        per_gpu = pod.demand.share_milli if pod.demand.is_fraction else (MILLI if pod.demand.gpus else 0)
        if total + per_gpu > target:
            return sequence
        total += pod.gpu_milli_total
        sequence.append(pod.demand)


def allocation_curve(arrived: np.ndarray, used: np.ndarray, gpus: int) -> dict[int, float]:
    """Mean allocation % per integer arrival % (rounded half to even, as pandas' round)."""
    arrive = np.round(arrived / gpus / 10)
    alloc = np.round(used / gpus / 10, 2)
    curve: dict[int, float] = {}
    for point in range(0, 131):
        in_bin = alloc[arrive == point]
        if not in_bin.size:
            in_bin = alloc[(arrive >= point - 1) & (arrive <= point + 1)]
        if in_bin.size:
            curve[point] = round(float(in_bin.mean()), 2)
    return curve


def simulator_names(nodes: list[TraceNode], rng: random.Random) -> list[TraceNode]:
    """The artifact renames nodes before the run: sorted by name, each gets a "%04d-" prefix from
    a random permutation. Its scheduler breaks score ties by smallest name, so ties go to nodes in
    a random order that is fixed for the whole run."""
    ordered = sorted(nodes, key=lambda n: n.name)
    prefix = list(range(len(ordered)))
    rng.shuffle(prefix)
    return [replace(n, name=f"{p:04d}-{n.name}") for n, p in zip(ordered, prefix)]


def replay(policy_name: str, nodes: list[TraceNode], pods: list[TracePod], seed: int, *, path: str = "policy",
           cycle: int = 0, oracle_workload: bool = False) -> Run:
    named = simulator_names(nodes, random.Random(seed))
    gpus = sum(n.gpus for n in nodes)
    sequence = arrival_sequence(pods, gpus * MILLI, seed)
    jobs = [job_of(i, demand) for i, demand in enumerate(sequence)]
    runner = PATHS[path](named, policy_name, seed)
    options = {"cycle": cycle} if cycle else {}
    if oracle_workload:
        options["workload"] = demand_mix([p.demand for p in pods])
    result = runner.run(jobs, **options)
    arrived = np.cumsum([_gpu_milli(d) for d in sequence])
    used = np.cumsum([_gpu_milli(d) if placed is not None else 0 for d, placed in zip(sequence, result.placements)])
    return Run(allocation_curve(arrived, used, gpus), len(sequence), result.decision_seconds)


def _gpu_milli(demand: Demand) -> int:
    return demand.share_milli if demand.is_fraction else demand.gpus * MILLI


def summarise(runs: list[Run]) -> dict:
    points = sorted(set.intersection(*(set(r.curve) for r in runs)))
    curve = {p: round(float(np.mean([r.curve[p] for r in runs])), 3) for p in points}
    pods = sum(r.pods for r in runs)
    seconds = sum(r.decision_seconds for r in runs)
    return {
        "alloc_pct": {p: curve[p] for p in REPORT_POINTS if p in curve},
        "unalloc_pct_at_100": round(100 - curve[100], 3) if 100 in curve else None,
        "pods_per_s": round(pods / seconds, 1) if seconds else None,
        "seeds": len(runs),
        "curve": curve,
    }


def summarise_bound(curves: list[dict[int, float]]) -> dict:
    alloc = {p: round(float(np.mean([c[p] for c in curves])), 3) for p in REPORT_POINTS}
    return {"alloc_pct": alloc, "unalloc_pct_at_100": round(100 - alloc[100], 3), "pods_per_s": None, "seeds": len(curves)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=Path, default=DEFAULT_NODES, help="node list CSV (sn,cpu_milli,memory_mib,gpu,model)")
    parser.add_argument("--pods", type=Path, default=DEFAULT_PODS, help="pod list CSV (at least the first five columns)")
    parser.add_argument("--policy", default="default,fgd", help="comma-separated policy names, or 'all'")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (the paper: 42..51)")
    parser.add_argument("--mix", default="default",
                        help="a workload mix derived from the pod list (benchmarks/openb_mixes.py): " + ", ".join(MIX_NAMES))
    parser.add_argument("--node-count", type=int, default=0, help="replicate the node list to this many nodes")
    parser.add_argument("--path", choices=sorted(PATHS), default="policy",
                        help="policy: the policy alone on SharedGpus' cluster; plan: scheduler.plan() cycles; carried: the same through one CarriedPlanner")
    parser.add_argument("--cycle", type=int, default=0,
                        help="arrivals per scheduling cycle (default: 1 for --path policy, 100 for --path plan or carried)")
    parser.add_argument("--oracle-workload", action="store_true",
                        help="the demand mix of the whole trace (the FGD artifact's setting) instead of the mix learnt online")
    parser.add_argument("--bound", action="store_true",
                        help="also the LP bound on the best possible allocation (benchmarks/openb_bound.py; needs SciPy)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    args = parser.parse_args(argv)
    if args.mix not in MIX_NAMES:
        parser.error(f"unknown mix {args.mix!r}; known: {', '.join(MIX_NAMES)}")
    for path in (args.nodes, args.pods):
        if not path.exists():
            parser.error(f"{path} does not exist; pass --nodes/--pods (the openb trace is not in this repository)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = list(PAPER_POLICIES) + ["default"] if args.policy == "all" else [p for p in args.policy.split(",") if p]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    nodes = read_nodes(args.nodes)
    pods = mix(args.mix, read_pods(args.pods), nodes)
    if args.node_count:
        nodes = replicate(nodes, args.node_count)
    published = (read_published() if args.pods.resolve() == DEFAULT_PODS.resolve() and not args.node_count
                 and args.mix == "default" else {})
    results = {}
    for name in names:
        results[name] = summarise([replay(name, nodes, pods, seed, path=args.path, cycle=args.cycle,
                                          oracle_workload=args.oracle_workload) for seed in seeds])
        if not args.json:
            print(f"  {name}: done ({len(seeds)} seeds)", file=sys.stderr)
    if args.bound:
        results["bound"] = summarise_bound([bound_curve(nodes, arrival_sequence(pods, sum(n.gpus for n in nodes) * MILLI, seed),
                                                        REPORT_POINTS) for seed in seeds])
    if args.json:
        print(json.dumps({"mix": args.mix, "path": args.path, "nodes": len(nodes), "gpus": sum(n.gpus for n in nodes), "seeds": seeds,
                          "policies": results, "published": published}))
    else:
        print_table(results, published, len(nodes), seeds)
    return 0


def print_table(results: dict, published: dict, node_count: int, seeds: list[int]) -> None:
    print(f"openb replay: {node_count} nodes, seeds {','.join(map(str, seeds))}; allocation % by arrived % of GPU capacity")
    header = "policy          " + "".join(f"{p:>8}" for p in REPORT_POINTS) + "  unalloc@100   pods/s"
    print(header)
    for name, result in results.items():
        row = "".join(f"{result['alloc_pct'].get(p, float('nan')):8.2f}" for p in REPORT_POINTS)
        unalloc = result["unalloc_pct_at_100"]
        print(f"{name:<16}{row}  {float('nan') if unalloc is None else unalloc:>10.2f}  {result['pods_per_s'] or 0:>7.0f}")
        paper = published.get(name)
        if paper:
            row = "".join(f"{paper.get(p, float('nan')):8.2f}" for p in REPORT_POINTS)
            print(f"{'  (published)':<16}{row}  {100 - paper[100]:>10.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
