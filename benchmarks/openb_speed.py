"""Placement speed on every workload mix: `openb.py` once per (mix, policy), `--repeat` times, one
replay at a time (its pods/s is CPU time of one process, numpy on one thread), then one Markdown
table of the median pods/s with the allocation at 100% arrival beside it (the same on every repeat:
a replay is deterministic).

    .venv/bin/python benchmarks/openb_speed.py --seeds 42,43,44 --repeat 2
    .venv/bin/python benchmarks/openb_speed.py --mixes gpuspec33 --path plan --seeds 42
    .venv/bin/python benchmarks/openb_speed.py --mixes default --node-count 10000 --policy default,fgd
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb_mixes import MIX_NAMES  # noqa: E402


def replay(mix: str, args: argparse.Namespace) -> dict:
    command = [sys.executable, str(Path(__file__).with_name("openb.py")), "--mix", mix, "--policy", args.policy,
               "--seeds", args.seeds, "--path", args.path, "--json"]
    if args.node_count:
        command += ["--node-count", str(args.node_count)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{mix}: openb.py failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mixes", default=",".join(MIX_NAMES))
    parser.add_argument("--policy", default="default")
    parser.add_argument("--seeds", default="42,43,44")
    parser.add_argument("--path", choices=("policy", "plan", "carried"), default="policy")
    parser.add_argument("--node-count", type=int, default=0, help="replicate the node list to this many nodes")
    parser.add_argument("--repeat", type=int, default=2, help="runs per mix; the median is reported")
    args = parser.parse_args(argv)
    mixes = [m for m in args.mixes.split(",") if m]
    unknown = sorted(set(mixes) - set(MIX_NAMES))
    if unknown:
        parser.error(f"unknown mixes {unknown}; known: {', '.join(MIX_NAMES)}")
    if args.repeat < 1 or args.node_count < 0:
        parser.error("--repeat must be at least 1 and --node-count 0 or more")
    print(f"pods/s ({args.path} path, seeds {args.seeds}, median of {args.repeat}"
          f"{f', {args.node_count} nodes' if args.node_count else ''}); allocation % at 100% arrival")
    print("| mix | policy | pods/s | runs | allocated at 100 |\n|---|---|---:|---|---:|")
    for mix in mixes:
        runs = [replay(mix, args) for _ in range(args.repeat)]
        for name in runs[0]["policies"]:
            speeds = [run["policies"][name]["pods_per_s"] for run in runs]
            allocated = runs[0]["policies"][name]["alloc_pct"].get("100")
            print(f"| {mix} | {name} | {statistics.median(speeds):,.0f} | {', '.join(f'{s:,.0f}' for s in speeds)} | "
                  f"{allocated if allocated is not None else '–'} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
