"""The workload mixes vary one property of the pod list each, at the level their name says, and
are the same every time."""

from __future__ import annotations

import pytest

from benchmarks.openb_mixes import MIX_NAMES, describe, mix
from benchmarks.openb_trace import read_nodes, read_pods
from tests.placement.test_benchmark_scripts import write_nodes, write_pods


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    folder = tmp_path_factory.mktemp("trace")
    return read_nodes(write_nodes(folder / "n.csv")), read_pods(write_pods(folder / "p.csv", five_columns=True, count=2000))


@pytest.mark.parametrize("name,key,target,tolerance", [
    ("gpushare80", "sharing_pct_of_gpu_pods", 80, 4),
    ("gpushare100", "sharing_pct_of_gpu_pods", 100, 0),
    ("multigpu30", "multi_gpu_pct_of_gpu_pods", 30, 4),
    ("gpuspec25", "constrained_pct_of_gpu_pods", 25, 4),
    ("cpu20", "cpu_only_pct_of_cpu", 20, 1.5),
])
def test_a_mix_has_the_level_its_name_says(trace, name, key, target, tolerance):
    nodes, pods = trace
    assert abs(describe(mix(name, pods, nodes))[key] - target) <= tolerance
    assert mix(name, pods, nodes) == mix(name, pods, nodes)


def test_constrained_pods_name_models_that_can_hold_them(trace):
    nodes, pods = trace
    largest = {}
    for node in nodes:
        largest[node.model] = max(largest.get(node.model, 0), node.gpus)
    constrained = [p.demand for p in mix("gpuspec33", pods, nodes) if p.demand.gpu_models]
    assert constrained
    for demand in constrained:
        assert all(largest[m] >= max(demand.gpus, 1) for m in demand.gpu_models)
    # Only the model list changes: the same demands otherwise.
    assert sorted(p.demand.share_milli for p in mix("gpuspec33", pods, nodes)) == sorted(p.demand.share_milli for p in pods)


def test_unknown_mixes_are_refused_with_the_known_ones(trace):
    nodes, pods = trace
    with pytest.raises(ValueError, match="gpushare40"):
        mix("gpushare", pods, nodes)
    assert mix("default", pods, nodes) == pods
    assert len(MIX_NAMES) == 17
