"""The benchmark scripts run end to end on small synthetic traces (never the real one) and print
the documented JSON shape."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FULL_COLUMNS = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time"


def write_nodes(path: Path) -> Path:
    rows = ["sn,cpu_milli,memory_mib,gpu,model"]
    rows += [f"node-{i:02d},96000,393216,8,G2" for i in range(10)]
    rows += [f"node-{10 + i:02d},64000,262144,2,T4" for i in range(6)]
    path.write_text("\n".join(rows) + "\n")
    return path


def write_pods(path: Path, *, five_columns: bool, count: int = 120) -> Path:
    rng = random.Random(7)
    rows = ["name,cpu_milli,memory_mib,num_gpu,gpu_milli" if five_columns else FULL_COLUMNS]
    for i in range(count):
        kind = rng.random()
        num_gpu, milli = (0, 0) if kind < 0.1 else (1, rng.choice([250, 470, 810])) if kind < 0.6 else (1, 1000)
        if kind > 0.97:
            num_gpu = 2
        row = f"pod-{i:04d},{rng.choice([2000, 4000, 8000])},{rng.choice([0, 8192])},{num_gpu},{milli}"
        if not five_columns:
            spec = "T4" if kind > 0.95 and num_gpu == 1 else ""
            start = i * 50
            row += f",{spec},{rng.choice(['LS', 'BE'])},Running,{start},{start + rng.choice([60, 600, 5000])},{start}"
        rows.append(row)
    path.write_text("\n".join(rows) + "\n")
    return path


def run_script(script: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args, "--json"],
                          capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("five_columns", [True, False])
def test_openb_replays_a_small_trace_and_prints_the_json_shape(tmp_path, five_columns):
    nodes = write_nodes(tmp_path / "nodes.csv")
    pods = write_pods(tmp_path / "pods.csv", five_columns=five_columns)
    out = run_script("openb.py", "--nodes", str(nodes), "--pods", str(pods),
                     "--policy", "default,fgd,best-fit,random", "--seeds", "1,2")
    assert set(out["policies"]) == {"default", "fgd", "best-fit", "random"}
    for result in out["policies"].values():
        assert set(result["alloc_pct"]) == {"85", "90", "95", "100", "110", "120", "130"}
        assert all(0 <= v <= 100 for v in result["alloc_pct"].values())
        assert result["unalloc_pct_at_100"] == pytest.approx(100 - result["alloc_pct"]["100"], abs=1e-6)
        assert result["pods_per_s"] > 0
    assert out["gpus"] == 10 * 8 + 6 * 2
    assert out["published"] == {}  # only shown beside the paper's own trace


def test_openb_replicates_the_node_list_for_scaling_runs(tmp_path):
    out = run_script("openb.py", "--nodes", str(write_nodes(tmp_path / "n.csv")),
                     "--pods", str(write_pods(tmp_path / "p.csv", five_columns=True)),
                     "--policy", "default", "--node-count", "40")
    assert out["nodes"] == 40
    assert out["policies"]["default"]["pods_per_s"] > 0


def test_openb_says_what_is_missing_when_the_trace_is_absent(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "openb.py"), "--pods", str(tmp_path / "none.csv")],
                          capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_mig_churn_compares_lazy_and_eager_teardown(tmp_path):
    pods = write_pods(tmp_path / "pods.csv", five_columns=False, count=60)
    out = run_script("mig_churn.py", "--pods", str(pods), "--a100", "8", "--h100", "8", "--time-scale", "1")
    lazy, eager = out["modes"]["lazy"], out["modes"]["eager"]
    for mode in (lazy, eager):
        assert set(mode) >= {"partitions_created", "partitions_destroyed", "acceptance_pct", "jobs_preempted"}
        assert mode["jobs"] == out["jobs"] > 0
    # Nothing is preempted here and every job ends, so eager teardown destroys what it created;
    # lazy deallocation reuses idle partitions instead.
    assert eager["jobs_preempted"] == 0
    assert eager["partitions_destroyed"] == eager["partitions_created"] > 0
    assert eager["partitions_left"] == 0
    # Lazy mode's partitions left idle at the end count as the destroys they will need.
    assert lazy["partitions_left"] > 0
    assert lazy["create_destroy_ops"] == lazy["partitions_created"] + lazy["partitions_destroyed"] + lazy["partitions_left"]
    assert lazy["create_destroy_ops"] < eager["create_destroy_ops"]


def test_mig_churn_on_a_mixed_cluster_prints_served_jobs_beside_the_bound(tmp_path):
    pytest.importorskip("scipy")
    pods = write_pods(tmp_path / "pods.csv", five_columns=False, count=60)
    out = run_script("mig_churn.py", "--pods", str(pods), "--a100", "1", "--h100", "0", "--fraction-gpus", "1",
                     "--time-scale", "40", "--bound")
    assert out["gpus"] == {"A100-SXM4-40GB": 1, "H100-SXM5-80GB": 0, "V100-SXM2-32GB": 1}
    bound = out["served_bound_pct"]
    for mode in out["modes"].values():
        # Served (started on arrival, never preempted) is part of accepted, and no scheduler serves more than the bound.
        assert mode["served_pct"] <= mode["acceptance_pct"]
        assert mode["served_pct"] <= bound
    assert bound < 100  # two GPUs cannot serve every job at x40


def test_mig_churn_refuses_negative_gpu_counts(tmp_path):
    pods = write_pods(tmp_path / "pods.csv", five_columns=False, count=5)
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "mig_churn.py"), "--pods", str(pods),
                           "--fraction-gpus", "-1"], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 2
    assert "--fraction-gpus must be 0 or more" in done.stderr


def test_plot_draws_ours_beside_the_published_curves(tmp_path):
    pytest.importorskip("matplotlib")
    results = run_script("openb.py", "--nodes", str(write_nodes(tmp_path / "n.csv")),
                         "--pods", str(write_pods(tmp_path / "p.csv", five_columns=True)), "--policy", "fgd,default")
    (tmp_path / "r.json").write_text(json.dumps(results))
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "plot_openb.py"), str(tmp_path / "r.json"),
                           str(tmp_path / "plot.png")], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_grid_runs_only_what_a_mix_lacks_and_keeps_the_rest(tmp_path):
    trace = ["--", "--nodes", str(write_nodes(tmp_path / "n.csv")), "--pods", str(write_pods(tmp_path / "p.csv", five_columns=True))]
    out = tmp_path / "grid"

    def grid(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(REPO / "benchmarks" / "openb_grid.py"), "--out", str(out), "--mixes", "default",
                               "--seeds", "1", *args, *trace], capture_output=True, text=True, timeout=120, cwd=REPO)

    first = grid("--policy", "best-fit")
    assert first.returncode == 0, first.stderr
    assert "ran best-fit, bound" in first.stderr
    kept = json.loads((out / "default.json").read_text())["policies"]
    assert list(kept) == ["best-fit", "bound"]

    second = grid("--policy", "best-fit,fgd")
    assert second.returncode == 0, second.stderr
    assert "ran fgd" in second.stderr and "bound" not in second.stderr
    grown = json.loads((out / "default.json").read_text())["policies"]
    assert list(grown) == ["best-fit", "fgd", "bound"]
    assert grown["best-fit"] == kept["best-fit"] and grown["bound"] == kept["bound"]
    assert "| default | fgd |" in second.stdout and "| default | bound |" in second.stdout

    assert "ran fgd" in grid("--policy", "best-fit,fgd", "--rerun", "fgd").stderr
    assert "ran" not in grid("--policy", "best-fit,fgd").stderr  # nothing lacking: nothing run

    other_seeds = subprocess.run([sys.executable, str(REPO / "benchmarks" / "openb_grid.py"), "--out", str(out), "--mixes", "default",
                                  "--seeds", "2", "--rerun", "fgd", *trace], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert other_seeds.returncode != 0 and "holds seeds [1], not [2]" in other_seeds.stderr
    assert json.loads((out / "default.json").read_text())["policies"]["best-fit"] == kept["best-fit"]
