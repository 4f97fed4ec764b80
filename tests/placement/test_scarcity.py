"""Scarcity weights (scarcity.py): a typical demand's weight over the share of GPUs able to host it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runai_lite.scheduler.placement import Choice, Demand, FractionCluster, demand_mix
from runai_lite.scheduler.placement.fragmentation import FragmentModel, typical_pods


def three_nodes() -> FractionCluster:
    # One 128-CPU node and two 96-CPU nodes, 8 GPUs each; the 96-CPU nodes have less memory.
    return FractionCluster(["big", "mid-a", "mid-b"], [[1000] * 8] * 3, gpu_model=["G3", "G2", "G2"],
                           cpu_free_milli=[128000, 96000, 96000], memory_free_mib=[768 * 1024, 384 * 1024, 384 * 1024])


def weights(model: FragmentModel, c: FractionCluster) -> dict[Demand, float]:
    return {demand: sum(w for _, w in row) for demand, row in zip(model.demands, model.table(c).variants)}


def test_a_demand_few_nodes_can_host_weighs_by_its_arrivals_over_their_share_of_gpus():
    big = Demand(gpus=8, cpu_milli=120000)
    small = Demand(gpus=1, cpu_milli=8000)
    model = FragmentModel([(big, 1.0), (small, 3.0)], scarcity=True)
    got = weights(model, three_nodes())
    # p = 1/4 and 3/4; supply 8/24 and 24/24: 0.75 and 0.75 before scaling back to their total 1.
    assert math.isclose(got[big], 0.5) and math.isclose(got[small], 0.5)
    plain = weights(FragmentModel([(big, 1.0), (small, 3.0)]), three_nodes())
    assert math.isclose(plain[big], 0.25) and math.isclose(plain[small], 0.75)


def test_host_memory_limits_the_supply_only_when_the_model_reads_it():
    needs_memory = Demand(gpus=4, cpu_milli=4000, memory_mib=500 * 1024)
    other = Demand(gpus=1)
    for host_memory, expected in ((True, (3.0 / (1 / 3)) / (3.0 / (1 / 3) + 1.0)), (False, 0.75)):
        model = FragmentModel([(needs_memory, 3.0), (other, 1.0)], scarcity=True, host_memory=host_memory)
        got = weights(model, three_nodes())
        key = needs_memory if host_memory else Demand(gpus=4, cpu_milli=4000)
        assert math.isclose(got[key], expected)


def test_a_model_constrained_demand_has_the_supply_of_its_models():
    on_g2 = Demand(gpus=1, gpu_models=("G2",))
    anywhere = Demand(gpus=1)
    model = FragmentModel([(on_g2, 1.0), (anywhere, 1.0)], scarcity=True)
    table = model.table(three_nodes())
    # One row (the same demand bar the models): its variants weigh 1/(2/3) and 1/1, scaled to 1.
    (row,) = table.variants
    assert dict(row) == pytest.approx({("G2",): 0.6, (): 0.4})
    assert np.allclose(table.allowed_weight[:, 0], [0.4, 1.0, 1.0])


def test_a_demand_no_node_can_host_keeps_its_arrival_weight():
    nowhere = Demand(gpus=16)
    model = FragmentModel([(nowhere, 1.0), (Demand(gpus=1), 1.0)], scarcity=True)
    got = weights(model, three_nodes())
    assert math.isclose(got[nowhere], 0.5)


def test_the_capacity_is_the_built_one_not_what_is_free_now():
    c = three_nodes()
    c.assign(Choice(0, (0,)), Demand(gpus=1, cpu_milli=100000))
    big = Demand(gpus=8, cpu_milli=120000)
    got = weights(FragmentModel([(big, 1.0), (Demand(gpus=1), 3.0)], scarcity=True), c)
    assert math.isclose(got[big], 0.5)


def test_the_mix_keeps_every_demand_with_the_median_memory_and_fgd_takes_its_typical_pods():
    seen = [Demand(gpus=1, memory_mib=m) for m in (10, 30, 20, 20)] + [Demand(cpu_milli=1000)] * 3 + [Demand(gpus=8)]
    mix = demand_mix(seen)
    assert mix == [(Demand(gpus=1, memory_mib=20), 4.0), (Demand(cpu_milli=1000), 3.0), (Demand(gpus=8), 1.0)]
    # FGD's typical pods: the most frequent covering 95% of the jobs (7 of 8 covers 87.5%: all three),
    # without host memory.
    assert typical_pods(mix) == [(Demand(gpus=1), 4.0), (Demand(cpu_milli=1000), 3.0), (Demand(gpus=8), 1.0)]
    assert typical_pods(mix, coverage=0.85) == [(Demand(gpus=1), 4.0), (Demand(cpu_milli=1000), 3.0)]
