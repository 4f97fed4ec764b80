"""Reading the Alibaba openb trace (cluster-trace-gpu-v2023) into placement types.

The trace is research/study-use only: it is never copied into this repository; scripts take its
path and default to `../shared/traces/openb/` beside the repository when that exists.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from runai_lite.model import MILLI
from runai_lite.scheduler.placement import Demand, FractionCluster

REPO = Path(__file__).resolve().parents[1]
# `shared/traces/openb/` beside the checkout or beside one of its parents (a worktree's).
DEFAULT_TRACE_DIR = next((d / "shared" / "traces" / "openb" for d in REPO.parents
                          if (d / "shared" / "traces" / "openb").is_dir()), REPO.parent / "shared" / "traces" / "openb")
DEFAULT_NODES = DEFAULT_TRACE_DIR / "openb_node_list_gpu_node.csv"
DEFAULT_PODS = DEFAULT_TRACE_DIR / "openb_pod_list_default.csv"
PUBLISHED = DEFAULT_TRACE_DIR / "fgd_expected_results" / "summary_alloc_by_arrival.csv"


@dataclass(frozen=True, slots=True)
class TraceNode:
    name: str
    cpu_milli: int
    memory_mib: int
    gpus: int
    model: str


@dataclass(frozen=True, slots=True)
class TracePod:
    name: str
    demand: Demand
    creation_time: float | None = None
    deletion_time: float | None = None

    @property
    def gpu_milli_total(self) -> int:
        d = self.demand
        return d.share_milli if d.is_fraction else d.gpus * MILLI


def _int(row: dict[str, str], column: str) -> int:
    value = (row.get(column) or "").strip()
    return int(float(value)) if value else 0


def _time(row: dict[str, str], column: str) -> float | None:
    value = (row.get(column) or "").strip()
    return float(value) if value else None


def read_nodes(path: Path) -> list[TraceNode]:
    with open(path, newline="") as f:
        return [TraceNode(row["sn"], _int(row, "cpu_milli"), _int(row, "memory_mib"), _int(row, "gpu"),
                          (row.get("model") or "").strip()) for row in csv.DictReader(f)]


def demand_of(row: dict[str, str]) -> Demand:
    """One pod row as a Demand: a fraction below 1000 thousandths of one GPU, whole GPUs at 1000,
    CPU-only otherwise. Only the first five columns are required; `gpu_spec` is optional."""
    gpus, milli = _int(row, "num_gpu"), _int(row, "gpu_milli")
    models = tuple(m for m in (row.get("gpu_spec") or "").split("|") if m)
    host = {"cpu_milli": _int(row, "cpu_milli"), "memory_mib": _int(row, "memory_mib")}
    if gpus == 1 and 0 < milli < MILLI:
        return Demand(share_milli=milli, gpu_models=models, **host)
    if gpus >= 1:
        return Demand(gpus=gpus, gpu_models=models, **host)
    return Demand(**host)


def read_pods(path: Path) -> list[TracePod]:
    with open(path, newline="") as f:
        return [TracePod(row["name"], demand_of(row), _time(row, "creation_time"), _time(row, "deletion_time"))
                for row in csv.DictReader(f)]


def replicate(nodes: list[TraceNode], count: int) -> list[TraceNode]:
    """`count` nodes cycling through `nodes`, renamed so name order is the replication order."""
    width = len(str(count))
    return [TraceNode(f"node-{i:0{width}d}", n.cpu_milli, n.memory_mib, n.gpus, n.model)
            for i, n in enumerate(nodes[i % len(nodes)] for i in range(count))]


def cluster_of(nodes: list[TraceNode]) -> FractionCluster:
    return FractionCluster(
        [n.name for n in nodes],
        [[MILLI] * n.gpus for n in nodes],
        gpu_model=[n.model for n in nodes],
        cpu_free_milli=[n.cpu_milli for n in nodes],
        memory_free_mib=[n.memory_mib for n in nodes],
    )


def read_published(path: Path = PUBLISHED) -> dict[str, dict[int, float]]:
    """The FGD artifact's mean allocation % per policy (our names) and arrival %."""
    names = {"Random": "random", "DotProd": "dotprod", "GpuClustering": "gpu-clustering",
             "GpuPacking": "gpu-packing", "BestFit": "best-fit", "FGD": "fgd"}
    published: dict[str, dict[int, float]] = {}
    if not path.exists():
        return published
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            policy = names.get(row["sc_policy"].split("-", 1)[-1])
            if policy:
                published.setdefault(policy, {})[int(row["arrived_pct_of_gpu_capacity"])] = float(row["alloc_pct_mean"])
    return published
