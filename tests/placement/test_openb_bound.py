"""The LP bound of benchmarks/openb_bound.py: never below what a placement achieves, and tight
where packing rules decide."""

from __future__ import annotations

import itertools

import pytest

pytest.importorskip("scipy")

import numpy as np  # noqa: E402

from benchmarks.openb import allocation_curve  # noqa: E402
from benchmarks.openb_bound import allocation_bound, bound_curve  # noqa: E402
from benchmarks.openb_replay import PolicyPath, job_of  # noqa: E402
from benchmarks.openb_trace import TraceNode  # noqa: E402
from runai_lite.model import MILLI  # noqa: E402
from runai_lite.scheduler.placement import Demand  # noqa: E402
from tests.placement.test_openb_replay import small_trace  # noqa: E402

ONE_GPU = [TraceNode("n0", 8000, 65536, 1, "T4")]


@pytest.mark.parametrize("demands,expected", [
    ([Demand(share_milli=600), Demand(share_milli=600)], 600),  # one GPU holds one pod over half
    ([Demand(share_milli=400), Demand(share_milli=600)], 1000),
    ([Demand(share_milli=500, gpu_models=("P100",))], 0),  # no GPU of that model
    ([Demand(gpus=2)], 0),  # no node with two GPUs
    ([Demand(share_milli=300, cpu_milli=6000), Demand(share_milli=300, cpu_milli=6000)], 400),  # CPU binds (at 4/3 of a pod: relaxed)
    ([Demand(gpus=1), Demand(share_milli=100)], 1000),
])
def test_the_bound_on_one_gpu(demands, expected):
    assert allocation_bound(ONE_GPU, demands) == expected


def best_packing(nodes: list[TraceNode], demands: list[Demand]) -> int:
    """Exhaustive optimum for tiny instances of fractions and single GPUs: every pod on a GPU or
    nowhere."""
    gpus = [(n, g) for n, node in enumerate(nodes) for g in range(node.gpus)]
    best = 0
    for assignment in itertools.product([None, *gpus], repeat=len(demands)):
        load: dict[tuple[int, int], int] = {}
        cpu = [0] * len(nodes)
        ok = True
        for demand, where in zip(demands, assignment):
            if where is None:
                continue
            load[where] = load.get(where, 0) + (demand.share_milli or MILLI)
            cpu[where[0]] += demand.cpu_milli
            ok = ok and load[where] <= MILLI and cpu[where[0]] <= nodes[where[0]].cpu_milli
        if ok:
            best = max(best, sum(load.values()))
    return best


@pytest.mark.parametrize("shares", [(810, 190, 470, 470), (650, 650, 350, 350, 600), (1000, 300, 700, 810, 190)])
def test_the_bound_is_never_below_the_best_packing(shares):
    nodes = [TraceNode("a", 16000, 65536, 2, "T4"), TraceNode("b", 4000, 65536, 1, "T4")]
    demands = [Demand(gpus=1, cpu_milli=2000) if s == MILLI else Demand(share_milli=s, cpu_milli=2000) for s in shares]
    optimum = best_packing(nodes, demands)
    assert optimum <= allocation_bound(nodes, demands) <= min(sum(shares), 3 * MILLI)


@pytest.mark.parametrize("seed", [1, 2])
def test_no_policy_allocates_more_than_the_bound(seed):
    nodes, demands = small_trace(seed, pods=60)
    jobs = [job_of(i, d) for i, d in enumerate(demands)]
    bound = allocation_bound(nodes, demands)
    capacity = sum(n.gpus for n in nodes) * MILLI
    points = (50, 80, 100, 130)
    curve = bound_curve(nodes, demands, points)
    milli = [d.share_milli if d.is_fraction else d.gpus * MILLI for d in demands]
    for policy in ("default", "fgd", "best-fit"):
        placements = PolicyPath(nodes, policy).run(jobs).placements
        used = [m if p is not None else 0 for m, p in zip(milli, placements)]
        assert sum(used) <= bound
        # The replay's figure at each point (the mean over the point's bin) never beats the bound.
        replayed = allocation_curve(np.cumsum(milli), np.cumsum(used), capacity // MILLI)
        assert all(replayed[p] <= curve[p] + 1e-9 for p in points if p in replayed)
    assert curve[50] <= 50.5 and curve[50] <= curve[100] <= curve[130] <= 100
    assert bound <= capacity
