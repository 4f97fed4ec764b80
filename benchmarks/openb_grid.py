"""Every workload mix (benchmarks/openb_mixes.py) through `openb.py` for `default`, `fgd` and
`best-fit` with the LP bound, then one Markdown table: allocation % by arrival, the bound, pods/s.

Runs `--jobs` replays at a time (each one process, one core), keeps each mix's JSON in `--out`
and runs only what a mix's JSON lacks (a policy, the bound) or what `--rerun` names, so an
interrupted grid resumes and a changed policy is re-run alone.

    .venv/bin/python benchmarks/openb_grid.py --out openb-grid --jobs 2
    .venv/bin/python benchmarks/openb_grid.py --out openb-grid --mixes default,gpuspec33 --seeds 42
    .venv/bin/python benchmarks/openb_grid.py --out openb-grid --rerun default   # after changing default
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb_mixes import MIX_NAMES  # noqa: E402

POINTS = ("85", "90", "95", "100", "110", "120", "130")


def run_mix(mix: str, args: argparse.Namespace) -> dict:
    """The mix's JSON in `--out`, with every asked policy and the bound: only what it lacks is
    run (policies in `--rerun` are run again), then merged in, so a grid grows one policy at a
    time and a changed policy is re-run without re-running the others or the bound."""
    target = args.out / f"{mix}.json"
    wanted = [p for p in args.policy.split(",") if p]
    done = json.loads(target.read_text()) if target.exists() else None
    have = set(done["policies"]) - set(args.rerun.split(",")) if done else set()
    missing = [p for p in wanted if p not in have]
    need_bound = "bound" not in have
    if not missing and not need_bound:
        return done
    command = [sys.executable, str(Path(__file__).with_name("openb.py")), "--mix", mix,
               "--policy", ",".join(missing or wanted[:1]), "--seeds", args.seeds, "--json", *args.extra]
    if need_bound:
        command.append("--bound")
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode:
        raise SystemExit(f"{mix}: openb.py failed:\n{run.stderr}")
    fresh = json.loads(run.stdout)
    if done is not None:
        if done["seeds"] != fresh["seeds"]:
            raise SystemExit(f"{mix}: {target} holds seeds {done['seeds']}, not {fresh['seeds']}; use another --out")
        kept = {name: summary for name, summary in done["policies"].items() if name in have}
        fresh["policies"] = {**kept, **{name: fresh["policies"][name] for name in missing}}
        if not need_bound:
            fresh["policies"]["bound"] = done["policies"]["bound"]
    order = [*wanted, *(name for name in fresh["policies"] if name not in wanted and name != "bound"), "bound"]
    fresh["policies"] = {name: fresh["policies"][name] for name in order if name in fresh["policies"]}
    target.write_text(json.dumps(fresh))
    print(f"  {mix}: ran {', '.join(missing + (['bound'] if need_bound else []))}", file=sys.stderr)
    return fresh


def table(results: dict[str, dict]) -> str:
    lines = ["| mix | policy | " + " | ".join(POINTS) + " | pods/s |", "|---|---|" + "---:|" * (len(POINTS) + 1)]
    for mix, result in results.items():
        for name, summary in result["policies"].items():
            alloc = summary["alloc_pct"]
            cells = " | ".join(f"{alloc[p]:.2f}" if p in alloc else "–" for p in POINTS)
            speed = f"{summary['pods_per_s']:,.0f}" if summary.get("pods_per_s") else "–"
            label = f"**{name}**" if name == "default" else name
            lines.append(f"| {mix} | {label} | {cells} | {speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for one JSON per mix")
    parser.add_argument("--mixes", default=",".join(MIX_NAMES))
    parser.add_argument("--policy", default="default,fgd,best-fit")
    parser.add_argument("--seeds", default="42,43,44,45,46,47,48,49,50,51")
    parser.add_argument("--rerun", default="", help="policies to run again even where a mix's JSON has them")
    parser.add_argument("--jobs", type=int, default=2, help="replays at a time")
    parser.add_argument("extra", nargs="*", help="more openb.py arguments (after --)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    mixes = [m for m in args.mixes.split(",") if m]
    unknown = sorted(set(mixes) - set(MIX_NAMES))
    if unknown:
        parser.error(f"unknown mixes {unknown}; known: {', '.join(MIX_NAMES)}")
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = dict(zip(mixes, pool.map(lambda m: run_mix(m, args), mixes)))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
