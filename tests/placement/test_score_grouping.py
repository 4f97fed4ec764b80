"""Scoring nodes once per node state (`FragmentScorer.score_by_state`) is a shortcut: on random
clusters with many alike nodes it gives exactly the scores and GPUs of scoring every node
(`score_each`), and a policy that always takes it chooses exactly what a fresh, straightforward
one chooses, pod after pod."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from runai_lite.scheduler.placement import Choice, Demand, FractionCluster
from runai_lite.scheduler.placement.fragmentation import FragmentModel
from runai_lite.scheduler.placement.policies import FragmentScorer, ScoredPolicy, _same_rows

# Few kinds of node, repeated: the clusters where grouping by state has something to group.
KINDS = (
    ([1000] * 4, "A", 40960, 32000),
    ([1000] * 8, "B", 16384, 64000),
    ([1000, 1000], "A", 0, None),
    ([500, 190, 1000, 0], "B", 16384, 8000),
)
demands = st.one_of(
    st.builds(Demand, share_milli=st.sampled_from([50, 250, 500, 810]), cpu_milli=st.sampled_from([0, 2000, 8000]),
              memory_mib=st.sampled_from([0, 4096]), gpu_models=st.sampled_from([(), ("A",), ("B",), ("A", "B")])),
    st.builds(Demand, gpus=st.sampled_from([1, 2, 4, 8]), cpu_milli=st.sampled_from([0, 4000, 16000]),
              gpu_models=st.sampled_from([(), ("B",)])),
    st.builds(Demand, gpu_memory_mib=st.sampled_from([5000, 20000])),
    st.builds(Demand, cpu_milli=st.sampled_from([1000, 8000])),
)
WORKLOAD = [(Demand(share_milli=500), 2.0), (Demand(share_milli=250, gpu_models=("A",)), 1.0),
            (Demand(gpus=1, cpu_milli=4000), 3.0), (Demand(gpus=4), 0.5), (Demand(cpu_milli=2000), 1.0)]


@st.composite
def alike_clusters(draw) -> FractionCluster:
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=40))
    return FractionCluster(
        [f"n{i:02d}" for i in draw(st.permutations(range(len(kinds))))],
        [free for free, *_ in kinds],
        gpu_model=[model for _, model, _, _ in kinds],
        gpu_memory_mib=[memory for _, _, memory, _ in kinds],
        cpu_free_milli=[cpu for *_, cpu in kinds],
        memory_free_mib=[None if i % 3 else 2048 for i in range(len(kinds))],
    )


def scorers() -> list[FragmentScorer]:
    return [FragmentScorer(FragmentModel(WORKLOAD)),
            FragmentScorer(FragmentModel(WORKLOAD, measures=("fgd", "cpu-limited")), keep_untouched=True)]


def place_some(c: FractionCluster, placed: list[tuple[Demand, int]]) -> None:
    """Work placed by a plain rule (the first node from a drawn one that fits), so that nodes of
    one kind drift into different states, some in CPU only."""
    for demand, start in placed:
        for node in (np.arange(len(c)) + start) % len(c):
            options = c.gpu_options(int(node), demand)
            if options:
                c.assign(Choice(int(node), options[-1]), demand)
                break


@settings(max_examples=50, deadline=None)
@given(alike_clusters(), st.lists(st.tuples(demands, st.integers(0, 39)), max_size=20),
       st.lists(demands, min_size=1, max_size=6))
def test_scores_by_state_equal_scores_node_by_node(c, earlier, asked):
    place_some(c, earlier)
    every = np.arange(len(c))
    for scorer in scorers():
        for demand in asked:
            grouped_score, grouped_gpu = scorer.score_by_state(c, every, demand)
            each_score, each_gpu = scorer.score_each(c, every, demand)
            assert np.array_equal(grouped_score, each_score)
            assert np.array_equal(grouped_gpu, each_gpu)


class _AlwaysGrouped(FragmentScorer):
    def __call__(self, cluster, nodes, demand):
        return self.score_by_state(cluster, nodes, demand)


@settings(max_examples=30, deadline=None)
@given(alike_clusters(), st.lists(demands, min_size=1, max_size=25))
def test_a_policy_scoring_by_state_chooses_what_a_fresh_plain_one_would(c, sequence):
    model = FragmentModel(WORKLOAD, measures=("fgd", "cpu-limited"))
    grouped = ScoredPolicy("grouped", _AlwaysGrouped(model, keep_untouched=True))
    for demand in sequence:
        plain_scorer = FragmentScorer(model, keep_untouched=True)
        plain = ScoredPolicy("plain", plain_scorer.score_each)
        choice = grouped.choose(c, demand)
        assert choice == plain.choose(c, demand)
        if choice is not None:
            c.assign(choice, demand)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from([-1.0, 0.0, 190.0, 1000.0, np.inf]), min_size=3, max_size=3), min_size=1,
                max_size=30))
def test_rows_are_grouped_exactly_when_equal(rows):
    array = np.array(rows)
    first, inverse = _same_rows(array)
    assert np.array_equal(array[first][inverse], array)
    assert len(first) == len({tuple(r) for r in rows})


def test_rows_too_wide_to_hash_are_left_ungrouped():
    assert _same_rows(np.zeros((3, 1000))) is None
