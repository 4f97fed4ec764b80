"""Properties over random clusters: every policy's choice is feasible by the readable per-node rules,
scores stay right as the cluster changes (cache invalidation), and the vectorised fragment measure
equals the FGD definition computed naively."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runai_lite.scheduler.placement import POLICY_NAMES, Choice, Demand, FractionCluster, make_policy
from runai_lite.scheduler.placement.confinement import foreign_weight
from runai_lite.scheduler.placement.fragmentation import FragmentModel

MODELS = ("A", "B")
shares = st.sampled_from([0, 50, 250, 300, 470, 500, 810, 1000])
demands = st.one_of(
    st.builds(Demand, share_milli=st.sampled_from([50, 250, 470, 810]), cpu_milli=st.sampled_from([0, 2000, 8000]),
              memory_mib=st.sampled_from([0, 4096]), gpu_models=st.sampled_from([(), ("A",), ("B",)])),
    st.builds(Demand, gpus=st.sampled_from([1, 2, 4]), cpu_milli=st.sampled_from([0, 4000, 16000]),
              memory_mib=st.sampled_from([0, 32768])),
    st.builds(Demand, gpu_memory_mib=st.sampled_from([5000, 20000])),
    st.builds(Demand, cpu_milli=st.sampled_from([1000, 8000])),
)


@st.composite
def clusters(draw) -> FractionCluster:
    count = draw(st.integers(1, 6))
    free = [draw(st.lists(shares, min_size=0, max_size=4)) for _ in range(count)]
    names = draw(st.permutations([f"n{i}" for i in range(count)]))
    return FractionCluster(
        names, free,
        gpu_model=[draw(st.sampled_from(MODELS)) for _ in range(count)],
        gpu_memory_mib=[draw(st.sampled_from([0, 16384, 40960])) for _ in range(count)],
        cpu_free_milli=[draw(st.sampled_from([None, 4000, 32000])) for _ in range(count)],
        memory_free_mib=[draw(st.sampled_from([None, 2048, 65536])) for _ in range(count)],
    )


def options(c: FractionCluster, demand: Demand) -> dict[int, list[tuple[int, ...]]]:
    return {n: o for n in range(len(c)) if (o := c.gpu_options(n, demand))}


@settings(max_examples=60)
@given(clusters(), st.lists(demands, min_size=1, max_size=12), st.sampled_from(POLICY_NAMES))
def test_choices_are_feasible_and_none_only_when_nothing_fits(c, sequence, name):
    policy = make_policy(name, workload=[(Demand(share_milli=500), 1.0), (Demand(gpus=1), 2.0), (Demand(), 1.0)])
    placed: list[tuple[Choice, Demand]] = []
    for i, demand in enumerate(sequence):
        if i % 4 == 3 and placed:  # releases change nodes behind the caches' back too
            c.release(*placed.pop(0))
        feasible = options(c, demand)
        choice = policy.choose(c, demand)
        if choice is None:
            assert not feasible
            continue
        assert choice.gpus in feasible.get(choice.node, [])
        c.assign(choice, demand)
        placed.append((choice, demand))
    assert all(0 <= f <= 1000 for free in c.gpu_free for f in free)
    assert np.array_equal(c.free[c.free >= 0], np.array([f for free in c.gpu_free for f in free], dtype=np.int64))


def naive_fragment(c: FractionCluster, node: int, workload, cpu_limited: bool = False, foreign: bool = True,
                   host_memory: bool = False) -> float:
    """F(node) = sum_m p_m F_m(node), straight from the paper's definition (with `cpu_limited`, m
    uses at most as much idle share as the jobs of m that the free CPU allows; without `foreign`,
    GPU demands that may not use the node's model count nothing; with `host_memory`, m must fit
    the free host memory too, and the jobs it allows limit m as the CPU's do)."""
    total = sum(w for _, w in workload)
    free = c.gpu_free[node]
    idle = sum(free)
    cpu = math.inf if c.cpu_free[node] is None else c.cpu_free[node]
    memory = math.inf if c.memory_free[node] is None or not host_memory else c.memory_free[node]
    fragment = 0.0
    for m, weight in workload:
        kept_off = m.needs_gpu and m.gpu_models and c.gpu_model[node] not in m.gpu_models
        if kept_off and not foreign:
            continue
        if not m.needs_gpu or kept_off or cpu < m.cpu_milli or memory < m.memory_mib:
            part = idle
        else:
            need = c.share_on(node, m) if m.is_fraction else 1000
            if sum(1 for f in free if f >= need) < max(m.gpus, 1):
                part = idle
            else:
                part = sum(f for f in free if f < need)
                if cpu_limited:
                    jobs = math.inf if math.isinf(cpu) else math.floor(cpu / max(m.cpu_milli, 1))
                    if not math.isinf(memory):
                        jobs = min(jobs, math.floor(memory / max(m.memory_mib, 1)))
                    part = idle - min(idle - part, jobs * need * max(m.gpus, 1))
        fragment += weight / total * part
    return fragment


@settings(max_examples=80)
@given(clusters(), st.lists(st.tuples(demands, st.floats(0.1, 5)), min_size=1, max_size=5), st.booleans(),
       st.booleans())
def test_vectorised_fragment_matches_the_definition(c, workload, cpu_limited, host_memory):
    # Both measures are computed; the one checked comes second, so the order of rows is checked too.
    measures = ("fgd", "cpu-limited") if cpu_limited else ("cpu-limited", "fgd")
    row = 1
    table = FragmentModel(workload, measures=measures, host_memory=host_memory).table(c)
    every = np.arange(len(c))
    table.refresh(every)

    def naive(node: int) -> float:
        return naive_fragment(c, node, workload, cpu_limited, host_memory=host_memory)

    for node in range(len(c)):
        assert math.isclose(table.fragment[row, node], naive(node), rel_tol=1e-9, abs_tol=1e-6)
    # The incremental "after" forms equal the fragment of the changed node, computed afresh.
    for demand, _ in workload:
        for node in range(len(c)):
            for gpus in c.gpu_options(node, demand):
                if demand.is_fraction:
                    shares = c.shares(np.array([node]), demand)
                    predicted = table.fraction_after(np.array([node]), shares, demand.cpu_milli,
                                                     demand.memory_mib)[row, 0, gpus[0]]
                else:
                    predicted = table.whole_after(np.array([node]), demand.gpus, demand.cpu_milli,
                                                  demand.memory_mib)[row, 0]
                c.assign(Choice(node, gpus), demand)
                assert math.isclose(predicted, naive(node), rel_tol=1e-9, abs_tol=1e-6)
                c.release(Choice(node, gpus), demand)


@settings(max_examples=60)
@given(clusters(), st.lists(st.tuples(demands, st.floats(0.1, 5)), min_size=1, max_size=5))
def test_less_the_foreign_share_fgds_decrease_is_that_of_the_measure_of_allowed_demands(c, workload):
    """FGD's fragment decrease minus share taken x foreign weight (what `default` ranks by) equals
    the decrease of F counted only over the demands that may use the node, for every option."""
    table = FragmentModel(workload).table(c)
    table.refresh(np.arange(len(c)))
    foreign = foreign_weight(table)
    for demand, _ in workload:
        for node in range(len(c)):
            for gpus in c.gpu_options(node, demand):
                one = np.array([node])
                if demand.is_fraction:
                    taken = int(c.shares(one, demand)[0])
                    after = table.fraction_after(one, c.shares(one, demand), demand.cpu_milli, 0)[0, 0, gpus[0]]
                else:
                    taken = demand.gpus * 1000
                    after = table.whole_after(one, demand.gpus, demand.cpu_milli, 0)[0, 0]
                ranked = table.fragment[0, node] - after - taken * foreign[node]
                before = naive_fragment(c, node, workload, foreign=False)
                c.assign(Choice(node, gpus), demand)
                assert math.isclose(ranked, before - naive_fragment(c, node, workload, foreign=False),
                                    rel_tol=1e-9, abs_tol=1e-6)
                c.release(Choice(node, gpus), demand)


@settings(max_examples=40)
@given(clusters(), st.lists(demands, min_size=1, max_size=12), st.sampled_from([n for n in POLICY_NAMES if n != "random"]))
def test_a_warm_policy_chooses_what_a_fresh_one_would(c, sequence, name):
    """Demands differing only in host memory or allowed models share one score cache, filtered
    at each choice: the cache must never change a choice."""
    workload = [(Demand(share_milli=500, gpu_models=("A",)), 1.0), (Demand(share_milli=500), 1.0), (Demand(gpus=1), 2.0)]
    warm = make_policy(name, workload=workload)
    for demand in sequence:
        choice = warm.choose(c, demand)
        assert choice == make_policy(name, workload=workload).choose(c, demand)
        if choice is not None:
            c.assign(choice, demand)
