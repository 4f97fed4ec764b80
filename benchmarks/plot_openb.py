"""Plot unallocated GPU % against arrived workload from `openb.py --json` output, with the FGD
artifact's published curves (mean over its 10 seeds) dashed beside ours.

    .venv/bin/python benchmarks/openb.py --policy all --seeds 42,43,44,45,46,47,48,49,50,51 --json > openb.json
    .venv/bin/python benchmarks/plot_openb.py openb.json docs/openb_unalloc.png
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.openb_trace import DEFAULT_TRACE_DIR  # noqa: E402

PER_SEED = DEFAULT_TRACE_DIR / "fgd_expected_results" / "analysis_allo_discrete.csv"
NAMES = {"Random": "random", "DotProd": "dotprod", "GpuClustering": "gpu-clustering",
         "GpuPacking": "gpu-packing", "BestFit": "best-fit", "FGD": "fgd"}


def published_curves(path: Path = PER_SEED) -> dict[str, dict[int, float]]:
    """Mean allocation % per integer arrival % over the artifact's seeds, by our policy names."""
    if not path.exists():
        return {}
    sums: dict[str, dict[int, list[float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            name = NAMES.get(row["sc_policy"].split("-", 1)[-1])
            if not name:
                continue
            for key, value in row.items():
                if key.isdigit() and value:
                    sums.setdefault(name, {}).setdefault(int(key), []).append(float(value))
    return {name: {a: sum(v) / len(v) for a, v in points.items()} for name, points in sums.items()}


def plot(results: dict, published: dict[str, dict[int, float]], out: Path, low: int = 85, high: int = 130) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, result) in enumerate(results["policies"].items()):
        colour = colours[i % len(colours)]
        curve = {int(k): v for k, v in result["curve"].items() if low <= int(k) <= high}
        xs = sorted(curve)
        ax.plot(xs, [100 - curve[x] for x in xs], color=colour, label=f"{name} (runai-lite)",
                linewidth=2.2 if name == "default" else 1.4)
        if name in published:
            xs = sorted(a for a in published[name] if low <= a <= high)
            ax.plot(xs, [100 - published[name][a] for a in xs], color=colour, linestyle="--", linewidth=1,
                    label=f"{name} (published)")
    ideal = list(range(low, 101))
    ax.plot(ideal + [high], [100 - x for x in ideal] + [0], color="grey", linestyle=":", label="ideal")
    ax.set_xlabel("arrived workload (% of cluster GPU capacity)")
    ax.set_ylabel("unallocated GPU (%)")
    ax.set_title(f"openb default trace, {results['nodes']} nodes, mean of {len(results['seeds'])} seeds")
    ax.set_ylim(0, 16)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="output of openb.py --json")
    parser.add_argument("out", type=Path, nargs="?", default=Path("docs/openb_unalloc.png"))
    args = parser.parse_args(argv)
    plot(json.loads(args.results.read_text()), published_curves(), args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
