"""The openb replay's thin path (the policy alone on the inputs `plan` builds) places every pod
exactly where `scheduler.plan` cycles place it, and the typical workload is learnt online."""

from __future__ import annotations

import random

import pytest

from benchmarks.openb_replay import CarriedPath, PlanPath, PolicyPath, job_of
from benchmarks.openb_trace import TraceNode
from runai_lite.model import MILLI
from runai_lite.scheduler.placement import Demand
from runai_lite.scheduler.shared_gpus import learning_horizon, workload_of


def small_trace(seed: int, pods: int = 48) -> tuple[list[TraceNode], list[Demand]]:
    rng = random.Random(seed)
    nodes = [TraceNode(f"{rng.randrange(10**4):04d}-n{i}", rng.choice([32000, 64000]), 262144, gpus, model)
             for i, (gpus, model) in enumerate([(8, "V100M16")] * 3 + [(4, "T4")] * 2 + [(2, "P100")] + [(0, "")])]
    demands = []
    for _ in range(pods):
        cpu = rng.choice([2000, 4000, 8000, 16000])
        kind = rng.random()
        models = ("T4", "P100") if rng.random() < 0.25 else ()
        if kind < 0.15:
            demands.append(Demand(cpu_milli=cpu, memory_mib=4096))
        elif kind < 0.6:
            demands.append(Demand(share_milli=rng.choice([250, 460, 810]), cpu_milli=cpu, gpu_models=models))
        else:
            demands.append(Demand(gpus=rng.choice([1, 1, 2, 4, 8]), cpu_milli=cpu, gpu_models=models))
    return nodes, demands


@pytest.mark.parametrize("policy", ["default", "fgd", "best-fit"])
@pytest.mark.parametrize("seed,cycle", [(1, 1), (2, 5), (3, 16)])
def test_the_policy_path_places_every_pod_where_plan_does(policy, seed, cycle):
    nodes, demands = small_trace(seed)
    jobs = [job_of(i, d) for i, d in enumerate(demands)]
    thin = PolicyPath(nodes, policy).run(jobs, cycle=cycle)
    planned = PlanPath(nodes, policy).run(jobs, cycle=cycle)
    carried = CarriedPath(nodes, policy).run(jobs, cycle=cycle)
    assert thin.placements == planned.placements == carried.placements
    placed = [p for p in thin.placements if p is not None]
    assert placed and len(placed) < len(jobs)  # the trace overloads the cluster: some pods fail


def test_the_cluster_fills_and_no_gpu_is_given_twice():
    nodes, demands = small_trace(4, pods=80)
    jobs = [job_of(i, d) for i, d in enumerate(demands)]
    placements = PolicyPath(nodes, "default").run(jobs).placements
    used: dict[tuple[str, int], int] = {}
    for demand, placed in zip(demands, placements):
        if placed is None:
            continue
        node, gpus = placed
        assert len(gpus) == (demand.gpus if not demand.is_fraction else 1) or not demand.needs_gpu
        for gpu in gpus:
            used[(node, gpu)] = used.get((node, gpu), 0) + (demand.share_milli or MILLI)
    assert used and max(used.values()) <= MILLI


def test_the_workload_is_learnt_from_the_earliest_jobs_up_to_a_power_of_two():
    assert [learning_horizon(n) for n in (0, 1, 2, 3, 4, 7, 8, 1000)] == [0, 1, 2, 2, 4, 4, 8, 512]
    cpu_only, half = Demand(cpu_milli=4000), Demand(share_milli=500, cpu_milli=2000)
    jobs = [job_of(i, d) for i, d in enumerate([cpu_only, half, half, cpu_only, cpu_only, half])]
    # Six seen: the earliest four count; CPU and CPU-only work are part of the mix.
    assert dict(workload_of(jobs)) == {Demand(cpu_milli=4000): 2.0, Demand(share_milli=500, cpu_milli=2000): 2.0}
    # A later job, however frequent, does not count before the jobs seen reach the next power of two.
    late = jobs + [job_of(6, Demand(gpus=8, cpu_milli=1000))]
    assert workload_of(late) == workload_of(jobs)
    # Submission order decides, not the order jobs come in.
    assert workload_of(list(reversed(jobs))) == workload_of(jobs)
