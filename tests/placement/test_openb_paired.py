"""benchmarks/openb_paired.py: per-seed differences between two policies, and the decisions they
disagree on when asked on the same cluster state."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.openb import REPORT_POINTS
from benchmarks.openb_paired import differing_choices, paired_summary, parse_seeds
from benchmarks.openb_trace import TraceNode
from runai_lite.scheduler.placement import Demand

REPO = Path(__file__).resolve().parents[2]


def curve(**points: float) -> dict[int, float]:
    """A curve with every report point at 90.0 but those given (p100=95.5)."""
    values = {p: 90.0 for p in REPORT_POINTS}
    values.update({int(k[1:]): v for k, v in points.items()})
    return values


def test_the_summary_is_the_mean_difference_its_standard_error_and_the_seeds_ahead_equal_behind():
    first = [curve(p100=95.10), curve(p100=95.00), curve(p100=95.30)]
    second = [curve(p100=95.00), curve(p100=95.00), curve(p100=95.50)]
    at_100 = paired_summary(first, second)[100]
    # differences 0.10, 0.00, -0.20: mean -0.0333, sample sd 0.1528, error sd / sqrt(3)
    assert at_100["mean"] == pytest.approx(-0.0333, abs=1e-4)
    assert at_100["stderr"] == pytest.approx(0.0882, abs=1e-4)
    assert (at_100["wins"], at_100["ties"], at_100["losses"]) == (1, 1, 1)
    assert paired_summary(first, second)[90] == {"mean": 0.0, "stderr": 0.0, "wins": 0, "ties": 3, "losses": 0}


def test_allocation_is_compared_at_its_reported_precision():
    # 95.1 - 95.0 in binary floating point is not exactly 0.1; the allocation has 2 decimals
    assert paired_summary([curve(p100=95.1)], [curve(p100=95.0)])[100]["mean"] == 0.1


def test_seeds_are_lists_or_inclusive_ranges():
    assert parse_seeds("42-45") == [42, 43, 44, 45]
    assert parse_seeds("42,48,50-51") == [42, 48, 50, 51]


def small_cluster(seed: int) -> tuple[list[TraceNode], list[Demand]]:
    rng = random.Random(seed)
    nodes = [TraceNode(f"{i:04d}-n{i}", rng.choice([32000, 64000]), 262144, gpus, model)
             for i, (gpus, model) in enumerate([(8, "G2")] * 3 + [(2, "T4")] * 3 + [(4, "V100M16")])]
    demands = []
    for _ in range(60):
        cpu = rng.choice([2000, 4000, 8000, 16000])
        kind = rng.random()
        if kind < 0.15:
            demands.append(Demand(cpu_milli=cpu))
        elif kind < 0.6:
            demands.append(Demand(share_milli=rng.choice([250, 500, 810]), cpu_milli=cpu))
        else:
            demands.append(Demand(gpus=rng.choice([1, 1, 2, 4]), cpu_milli=cpu))
    return nodes, demands


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_policy_never_disagrees_with_itself(seed):
    nodes, demands = small_cluster(seed)
    considered, differ = differing_choices(nodes, demands, "default", "default")
    assert considered > 0 and sum(differ.values()) == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_disagreements_between_two_policies_are_counted_by_kind(seed):
    nodes, demands = small_cluster(seed)
    considered, differ = differing_choices(nodes, demands, "fgd", "spread")
    assert 0 < sum(differ.values()) <= considered
    assert set(differ) <= {"fraction", "1-GPU", "2-GPU", "4-GPU", "CPU-only"}


def write_trace(folder: Path) -> tuple[Path, Path]:
    nodes, demands = small_cluster(4)
    node_csv, pod_csv = folder / "nodes.csv", folder / "pods.csv"
    node_csv.write_text("sn,cpu_milli,memory_mib,gpu,model\n" + "".join(
        f"{n.name},{n.cpu_milli},{n.memory_mib},{n.gpus},{n.model}\n" for n in nodes))
    pod_csv.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\n" + "".join(
        f"pod-{i:03d},{d.cpu_milli},1024,{1 if d.is_fraction else d.gpus},{d.share_milli if d.is_fraction else 1000 * bool(d.gpus)}\n"
        for i, d in enumerate(demands)))
    return node_csv, pod_csv


def test_the_script_prints_per_point_differences_and_choices(tmp_path):
    nodes, pods = write_trace(tmp_path)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "openb_paired.py"), "--nodes", str(nodes),
                           "--pods", str(pods), "--policies", "default,default", "--seeds", "1-3", "--choices", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["seeds"] == [1, 2, 3] and out["difference"]
    for row in out["difference"].values():
        assert row == {"mean": 0.0, "stderr": 0.0, "wins": 0, "ties": 3, "losses": 0}
    assert all(choice["differ"] == 0 and choice["pods"] > 0 for choice in out["choices"].values())
