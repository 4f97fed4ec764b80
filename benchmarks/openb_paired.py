"""Two policies on the same arrivals, seed by seed: is a difference in the mixes table a mechanism
or seed noise?

For each seed both policies replay the same pod sequence (`openb.replay`, the policy path, the
workload learnt online). Per arrival level it prints the mean of the per-seed differences
(first policy minus second), its standard error, and the seeds the first wins, ties and loses.
With `--choices` it also replays the first policy once more and asks the second, on the very same
cluster state before every pod up to 130% arrival, where it would have put that pod: how many
decisions the two policies actually disagree on, by kind of pod. A handful of differing
decisions among thousands moves later placements a little on every seed, up or down; a mean
difference well inside two standard errors, over many seeds, is that noise and not a mechanism.

    .venv/bin/python benchmarks/openb_paired.py --mix multigpu50 --policies default,fgd --seeds 42-81
    .venv/bin/python benchmarks/openb_paired.py --mix multigpu50 --seeds 42,48 --choices
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb import REPORT_POINTS, arrival_sequence, replay, simulator_names  # noqa: E402
from benchmarks.openb_mixes import MIX_NAMES, mix  # noqa: E402
from benchmarks.openb_replay import PolicyPath, job_of  # noqa: E402
from benchmarks.openb_trace import DEFAULT_NODES, DEFAULT_PODS, TraceNode, TracePod, read_nodes, read_pods  # noqa: E402
from runai_lite.model import MILLI  # noqa: E402
from runai_lite.scheduler.placement import Demand, make_policy  # noqa: E402
from runai_lite.scheduler.shared_gpus import demand_of, learning_horizon, workload_of  # noqa: E402

LAST_POINT = max(REPORT_POINTS)


def paired_summary(first: Sequence[dict[int, float]], second: Sequence[dict[int, float]]) -> dict[int, dict]:
    """Per arrival level: mean and standard error of first - second over the seeds, and the
    seeds where first is ahead, equal, behind (allocation % is reported to 2 decimals). Levels
    some replay never reached (a small trace) are left out."""
    summary = {}
    for point in (p for p in REPORT_POINTS if all(p in c for c in (*first, *second))):
        diff = np.array([round(a[point] - b[point], 2) for a, b in zip(first, second)])
        error = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else float("nan")
        summary[point] = {"mean": round(float(diff.mean()), 4), "stderr": round(error, 4),
                          "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()), "losses": int((diff < 0).sum())}
    return summary


def kind_of(demand: Demand) -> str:
    if demand.is_fraction:
        return "fraction"
    return f"{demand.gpus}-GPU" if demand.gpus else "CPU-only"


def differing_choices(nodes: Sequence[TraceNode], sequence: Sequence[Demand], policy: str, other: str,
                      up_to_pct: float = LAST_POINT) -> tuple[int, Counter[str]]:
    """Replays `policy` (the policy path: same cluster, same workload learnt online) and, before
    each pod, asks `other` where it would go on the same state. Returns the pods considered (those
    arriving up to `up_to_pct` of GPU capacity) and, per kind of pod, how many `other` would have
    placed on another node (or not at all, or where `policy` failed)."""
    gpus = sum(n.gpus for n in nodes)
    arrived = np.cumsum([d.share_milli if d.is_fraction else d.gpus * MILLI for d in sequence]) / (gpus * MILLI) * 100
    count = int(np.searchsorted(arrived, up_to_pct + 0.5))
    jobs = [job_of(i, d) for i, d in enumerate(sequence[:count])]
    cluster = PolicyPath(nodes, policy).shared.cluster
    differ: Counter[str] = Counter()
    horizon = -1
    for i, job in enumerate(jobs):
        if learning_horizon(i + 1) != horizon:
            horizon = learning_horizon(i + 1)
            workload = workload_of(jobs[: i + 1])
            chooser, shadow = make_policy(policy, workload=workload), make_policy(other, workload=workload)
        demand = demand_of(job)
        assert demand is not None
        choice, alternative = chooser.choose(cluster, demand), shadow.choose(cluster, demand)
        if (choice and choice.node) != (alternative and alternative.node):
            differ[kind_of(demand)] += 1
        if choice is not None:
            cluster.assign(choice, demand)
    return count, differ


def parse_seeds(text: str) -> list[int]:
    """'42,43' or '42-81' (inclusive), or both mixed."""
    seeds: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=Path, default=DEFAULT_NODES)
    parser.add_argument("--pods", type=Path, default=DEFAULT_PODS)
    parser.add_argument("--mix", default="default", help=", ".join(MIX_NAMES))
    parser.add_argument("--policies", default="default,fgd", help="two policy names: first minus second")
    parser.add_argument("--seeds", default="42-51", help="comma-separated seeds or ranges (42-81)")
    parser.add_argument("--choices", action="store_true", help="also count the decisions the two disagree on")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    policies = [p for p in args.policies.split(",") if p]
    if len(policies) != 2 or args.mix not in MIX_NAMES:
        parser.error("--policies needs exactly two names and --mix a known mix")
    for path in (args.nodes, args.pods):
        if not path.exists():
            parser.error(f"{path} does not exist; pass --nodes/--pods (the openb trace is not in this repository)")
    nodes = read_nodes(args.nodes)
    pods: list[TracePod] = mix(args.mix, read_pods(args.pods), nodes)
    seeds = parse_seeds(args.seeds)
    curves = {name: [replay(name, nodes, pods, seed).curve for seed in seeds] for name in policies}
    out: dict = {"mix": args.mix, "policies": policies, "seeds": seeds,
                 "difference": paired_summary(curves[policies[0]], curves[policies[1]])}
    if args.choices:
        out["choices"] = {}
        for seed in seeds:
            named = simulator_names(nodes, random.Random(seed))
            sequence = arrival_sequence(pods, sum(n.gpus for n in nodes) * MILLI, seed)
            considered, differ = differing_choices(named, sequence, *policies)
            out["choices"][seed] = {"pods": considered, "differ": sum(differ.values()), "by_kind": dict(differ)}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.mix}: {policies[0]} minus {policies[1]}, allocation % points, seeds {args.seeds} ({len(seeds)})")
    print("| arrival % | mean | std. error | ahead / equal / behind |\n|---:|---:|---:|---|")
    for point, row in out["difference"].items():
        print(f"| {point} | {row['mean']:+.3f} | {row['stderr']:.3f} | {row['wins']} / {row['ties']} / {row['losses']} |")
    for seed, row in out.get("choices", {}).items():
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(row["by_kind"].items()))
        print(f"seed {seed}: {row['differ']} of the {row['pods']} pods up to {LAST_POINT}% arrival placed differently ({kinds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
