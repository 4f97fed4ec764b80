"""Placement policies: given free capacity and a demand, pick a node and GPUs.

A scored policy gives every feasible node a score (higher is better) and, for a fraction, the GPU it
would use there; the best score wins and ties go to the smallest node name, as in the FGD paper's
simulator, so a policy is deterministic for the same input. A node's score depends only on that
node's state, so scores are cached per demand and recomputed only for nodes whose version changed
since (see `ScoredPolicy`).

The baselines follow the FGD artifact (hkust-adsl/kubernetes-scheduler-simulator, score plugins),
integer truncation of scores included, since it decides which nodes tie.
"""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Protocol

import numpy as np

from ...model import MILLI
from . import feasible as fz
from .cluster import Choice, Demand, FractionCluster
from .confinement import foreign_weight
from .fragmentation import FragmentModel, FragmentTable, typical_pods

MAX_SPEC_CPU = 128_000  # the simulator's normalisers: the largest node's CPU and GPU share
MAX_SPEC_GPU = 8 * MILLI
NO_GPU = -1  # "no GPU chosen" (CPU-only or whole-GPU demands, infeasible nodes)
# From this many nodes to score, grouping them by state first is cheaper than scoring each
# (below it, numpy's per-call overhead of grouping outweighs what it saves).
GROUP_FROM = 32


class PlacementPolicy(Protocol):
    name: str

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None: ...


class Scorer(Protocol):
    """Scores for `nodes` (infeasible = -inf) and, for fractions, the GPU each would use."""

    def __call__(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]: ...


NodeScore = Callable[[FractionCluster, np.ndarray, Demand, np.ndarray], np.ndarray]
GpuPicker = Callable[[FractionCluster, np.ndarray, np.ndarray], np.ndarray]


def _fraction_then(pick_gpu: GpuPicker, node_score: NodeScore) -> Scorer:
    """A scorer from a GPU picker for fractions and a node score over feasible nodes."""

    def score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        gpu = np.full(nodes.shape, NO_GPU, dtype=np.int64)
        if demand.is_fraction:
            fits, _ = fz.fraction_options(cluster, nodes, demand)
            ok = fits.any(axis=1)
            gpu = np.where(ok, pick_gpu(cluster, nodes, fits), NO_GPU)
        else:
            ok = fz.node_fits(cluster, nodes, demand)
        values = node_score(cluster, nodes, demand, gpu).astype(np.float64)
        return np.where(ok, values, -np.inf), gpu

    return score


# ---- the FGD paper's baselines ---------------------------------------------------------------


def _cpu_left(cluster: FractionCluster, nodes: np.ndarray) -> np.ndarray:
    """Free CPU; unknown CPU counts as 0 so it adds nothing to a score."""
    cpu = cluster.cpu[nodes]
    return np.where(np.isfinite(cpu), cpu, 0.0)


def _best_fit_score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand, gpu: np.ndarray) -> np.ndarray:
    """BestFit: 100 * (1 - sum over {cpu, gpu} of 0.5 * (free - request) / maxSpec), truncated."""
    score = (_cpu_left(cluster, nodes) - demand.cpu_milli) / MAX_SPEC_CPU * 0.5
    score = score + (fz.idle_milli(cluster, nodes) - fz.requested_milli(cluster, nodes, demand)) / MAX_SPEC_GPU * 0.5
    return np.trunc((1.0 - score) * 100)


def _dot_product_score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand, gpu: np.ndarray) -> np.ndarray:
    """Tetris dot product of free and requested (cpu, gpu), both over maxSpec; smaller is better."""
    dot = (_cpu_left(cluster, nodes) / MAX_SPEC_CPU) * (demand.cpu_milli / MAX_SPEC_CPU)
    dot = dot + (fz.idle_milli(cluster, nodes) / MAX_SPEC_GPU) * (fz.requested_milli(cluster, nodes, demand) / MAX_SPEC_GPU)
    return np.trunc(100 * (1 - dot / 2))


def _gpu_packing_score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand, gpu: np.ndarray) -> np.ndarray:
    """GpuPacking: shared GPUs first (the fuller the better), then free GPUs on used nodes, then
    untouched nodes; CPU-only demands score 0 everywhere."""
    if not demand.needs_gpu:
        return np.zeros(nodes.shape)
    full = fz.full_gpus(cluster, nodes)
    untouched = full == cluster.gpu_count[nodes]
    if demand.is_fraction:
        left = cluster.free[nodes, np.maximum(gpu, 0)]
        used_node = np.where(left == MILLI, 49, np.maximum(100 - (left * 100 // MILLI) // 10, 50))
    else:
        used_node = np.full(nodes.shape, max(50 - demand.gpus, 33))
    return np.where(untouched, np.maximum(33 - full, full), used_node)


def _gpu_clustering_score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand, gpu: np.ndarray) -> np.ndarray:
    """GpuClustering: nodes already running only this demand's affinity class (share, 1-GPU,
    2-GPU, ...) first, then mixed nodes with it, idle nodes, other classes; fuller nodes first."""
    if not demand.needs_gpu:
        return np.zeros(nodes.shape)
    classes = cluster.affinity[nodes] > 0
    column = min(demand.affinity, classes.shape[1] - 1)
    has_own, kinds = classes[:, column], classes.sum(axis=1)
    band = np.where(has_own, np.where(kinds == 1, 75, 50), np.where(kinds == 0, 25, 0))
    return 25 * (MAX_SPEC_GPU - fz.idle_milli(cluster, nodes)) // MAX_SPEC_GPU + band


def _spread_score(cluster: FractionCluster, nodes: np.ndarray, demand: Demand, gpu: np.ndarray) -> np.ndarray:
    """Most idle GPU share first: leaves every GPU as cool as possible."""
    return fz.idle_milli(cluster, nodes)


# ---- fragmentation gradient descent -------------------------------------------------------------


def _sigmoid_score(delta: np.ndarray) -> np.ndarray:
    """FGD's node score: int(100 * sigmoid(fragment decrease / 1000))."""
    return np.trunc(100.0 / (1.0 + np.exp(-delta / 1000.0)))


class FragmentScorer:
    """FGD: the score is how much placing the demand lowers the node's fragment (as the paper,
    truncated to an integer, so near-equal moves tie and go to the first node by name); for a
    fraction the GPU that lowers it most (lowest index among equals). A model with several
    fragment measures ranks by them in turn."""

    def __init__(self, model: FragmentModel, *, keep_untouched: bool = False, foreign_idle_is_fragment: bool = True):
        self.model = model
        # Between the first measure and the next: GPU work prefers nodes already running GPU work,
        # keeping untouched nodes whole for jobs that need all their GPUs.
        self.keep_untouched = keep_untouched
        # False: idle share counts only against the typical demands that may use the node's model
        # (confinement.py), so work is not drawn to the nodes few demands may use.
        self.foreign_idle_is_fragment = foreign_idle_is_fragment
        self._tables: weakref.WeakKeyDictionary[FractionCluster, FragmentTable] = weakref.WeakKeyDictionary()
        self._foreign: weakref.WeakKeyDictionary[FractionCluster, np.ndarray] = weakref.WeakKeyDictionary()

    def table(self, cluster: FractionCluster) -> FragmentTable:
        table = self._tables.get(cluster)
        if table is None:
            table = self._tables[cluster] = self.model.table(cluster)
        return table

    def option_scores(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        """(score per option, feasible per option): [K, G] for fractions, [K, 1] otherwise. With
        several measures the score ranks by the first, then the next, and so on."""
        table = self.table(cluster)
        table.refresh(nodes)
        before = table.fragment[:, nodes]
        in_use = None
        if self.keep_untouched and demand.needs_gpu:
            in_use = (fz.full_gpus(cluster, nodes) < cluster.gpu_count[nodes]).astype(np.float64)[:, None]
        if demand.is_fraction:
            fits, share = fz.fraction_options(cluster, nodes, demand)
            delta = before[:, :, None] - table.fraction_after(nodes, share, demand.cpu_milli, demand.memory_mib)
            return self._rank(self._without_foreign(cluster, nodes, share, delta), in_use), fits
        ok = fz.node_fits(cluster, nodes, demand)
        delta = (before - table.whole_after(nodes, demand.gpus, demand.cpu_milli, demand.memory_mib))[:, :, None]
        return self._rank(self._without_foreign(cluster, nodes, demand.gpus * MILLI, delta), in_use), ok[:, None]

    def _without_foreign(self, cluster: FractionCluster, nodes: np.ndarray, taken: np.ndarray | int,
                         delta: np.ndarray) -> np.ndarray:
        """The fragment decrease less what FGD credits for taking idle share that demands kept off
        the node's model could never use (`taken` x their weight; confinement.py)."""
        if self.foreign_idle_is_fragment:
            return delta
        foreign = self._foreign.get(cluster)
        if foreign is None:
            foreign = self._foreign[cluster] = foreign_weight(self.table(cluster))
        return delta - (taken * foreign[nodes])[None, :, None]

    @staticmethod
    def _rank(delta: np.ndarray, in_use: np.ndarray | None) -> np.ndarray:
        """Lexicographic: each measure's FGD score (an integer in [0, 100]) in turn. With the
        in-use flag: it comes after the first measure, and the later measures rank only nodes in
        use; among untouched nodes FGD's own order (by name) decides, which packs breaking-in
        work onto the same few nodes instead of steering it to the roomiest ones (the later
        measure prefers nodes with the most free CPU: the only ones the largest jobs fit)."""
        score = np.zeros(delta.shape[1:])
        for row, measure_delta in enumerate(delta):
            part = _sigmoid_score(measure_delta)
            if row > 0 and in_use is not None:
                part = part * in_use
            score = score * 101 + part
            if row == 0 and in_use is not None:
                score = score * 2 + in_use
        return score

    def __call__(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        if len(nodes) < GROUP_FROM:
            return self.score_each(cluster, nodes, demand)
        return self.score_by_state(cluster, nodes, demand)

    def score_each(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        """Every node's score and GPU, computed node by node (as arrays)."""
        scores, fits = self.option_scores(cluster, nodes, demand)
        scores = np.where(fits, scores, -np.inf)
        best = np.argmax(scores, axis=1)
        node_score = scores[np.arange(len(nodes)), best]
        gpu = np.where(demand.is_fraction & np.isfinite(node_score), best, NO_GPU)
        return node_score, gpu

    def score_by_state(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        """The same as `score_each`, computed once per node state. A node's score and GPU depend
        only on its GPUs' free shares, free CPU and host memory, GPU model and GPU memory once the
        demand fits it at all, and many nodes share those (untouched nodes of one kind, full
        ones): on a whole cluster, as after every relearning of the workload, this computes a few
        dozen states instead of a thousand nodes x every GPU slot x every typical demand."""
        score = np.full(len(nodes), -np.inf)
        gpu = np.full(len(nodes), NO_GPU, dtype=np.int64)
        fits = np.flatnonzero(fz.node_fits(cluster, nodes, demand))
        if not fits.size:
            return score, gpu
        fitting = nodes[fits]
        state = np.column_stack((cluster.free[fitting], cluster.cpu[fitting], cluster.memory[fitting],
                                 cluster.model_id[fitting], cluster.gpu_memory[fitting])).astype(np.float64)
        groups = _same_rows(state)
        if groups is None:
            score[fits], gpu[fits] = self.score_each(cluster, fitting, demand)
            return score, gpu
        first, inverse = groups
        each_score, each_gpu = self.score_each(cluster, fitting[first], demand)
        score[fits], gpu[fits] = each_score[inverse], each_gpu[inverse]
        return score, gpu


_ROW_HASH = np.random.default_rng(20231203).uniform(1.0, 2.0, 256)


def _same_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first, inverse): the index of one row per group of equal rows, and each row's group; None
    when the rows are too wide or two different rows hashed alike (the caller then takes every row).
    A hash and a check, because `np.unique(axis=0)` sorts rows as raw bytes, several times slower."""
    if rows.shape[1] > len(_ROW_HASH):
        return None
    key = np.where(np.isinf(rows), -7.0, rows) @ _ROW_HASH[: rows.shape[1]]
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    if not np.array_equal(rows[first][inverse], rows):
        return None
    return first, inverse


# ---- choosing --------------------------------------------------------------------------------


class _ScoreCache:
    """Per demand: every node's last score and GPU, and the node version they were computed at."""

    def __init__(self, size: int):
        self.score = np.full(size, -np.inf)
        self.gpu = np.full(size, NO_GPU, dtype=np.int64)
        self.seen = np.full(size, -1, dtype=np.int64)


@lru_cache(maxsize=4096)  # a few hundred kinds of demand in a long replay; `replace` is slow
def _scored(demand: Demand) -> Demand:
    """The demand as a score sees it (see `ScoredPolicy`)."""
    return replace(demand, memory_mib=0, gpu_models=(), slots=None)


@lru_cache(maxsize=4096)
def _scored_with_memory(demand: Demand) -> Demand:
    return replace(demand, gpu_models=(), slots=None)


class ScoredPolicy:
    """Best score wins; ties go to the smallest node name. Scores are cached per (cluster, scored
    demand) and recomputed only for nodes changed since.

    A node's score does not depend on the demand's allowed GPU models or allowed nodes, nor, unless
    the scorer says so (`scores_host_memory`), on its host memory: they only say whether the node
    may be used. So demands differing in them share one cache (`scored`), and those filters are
    applied to the cached scores at each choice, as whole-array masks; otherwise every memory size
    and model list would keep its own cache, stale on most nodes whenever it comes up."""

    def __init__(self, name: str, scorer: Scorer, *, scores_host_memory: bool = False):
        self.name = name
        self._scorer = scorer
        self.scored = _scored_with_memory if scores_host_memory else _scored
        self._caches: weakref.WeakKeyDictionary[FractionCluster, dict[Demand, _ScoreCache]] = weakref.WeakKeyDictionary()

    def scores(self, cluster: FractionCluster, demand: Demand) -> _ScoreCache:
        """The cached scores of `demand` as scored (see `scored`), brought up to date."""
        per_demand = self._caches.setdefault(cluster, {})
        cache = per_demand.get(demand)
        if cache is None:
            cache = per_demand[demand] = _ScoreCache(len(cluster))
        stale = np.flatnonzero(cache.seen != cluster.node_version)
        if stale.size:
            cache.score[stale], cache.gpu[stale] = self._scorer(cluster, stale, demand)
            cache.seen[stale] = cluster.node_version[stale]
        return cache

    def _usable(self, cluster: FractionCluster, demand: Demand) -> np.ndarray | None:
        """Nodes the filters left out of the scores allow (None: all of them)."""
        mask = None
        if demand.memory_mib:
            mask = cluster.memory >= demand.memory_mib
        if demand.gpu_models and demand.needs_gpu:
            models = cluster.nodes_allowing(demand.gpu_models)
            mask = models if mask is None else mask & models
        if demand.slots is not None:
            slots = np.zeros(len(cluster), dtype=bool)
            slots[np.fromiter(demand.slots, dtype=np.int64, count=len(demand.slots))] = True
            mask = slots if mask is None else mask & slots
        return mask

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None:
        if not len(cluster):
            return None
        cache = self.scores(cluster, self.scored(demand))
        usable = self._usable(cluster, demand)
        score = cache.score if usable is None else np.where(usable, cache.score, -np.inf)
        best = score.max()
        if best == -np.inf:
            return None
        ties = np.flatnonzero(score == best)
        node = int(ties[np.argmin(cluster.name_rank[ties])]) if ties.size > 1 else int(ties[0])
        return Choice(node, _gpus_for(cluster, node, demand, int(cache.gpu[node])))


def _gpus_for(cluster: FractionCluster, node: int, demand: Demand, fraction_gpu: int) -> tuple[int, ...]:
    if demand.is_fraction:
        return (fraction_gpu,)
    return cluster.whole_gpus(node, demand.gpus) if demand.gpus else ()


class RandomPolicy:
    """A feasible node uniformly at random, then a fitting GPU uniformly at random (the FGD
    artifact's Random), from a seeded generator: deterministic per seed."""

    name = "random"

    def __init__(self, seed: int = 0):
        self._random = random.Random(seed)

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None:
        nodes = np.arange(len(cluster))
        if demand.is_fraction:
            fits, _ = fz.fraction_options(cluster, nodes, demand)
            candidates = np.flatnonzero(fits.any(axis=1))
        else:
            candidates = np.flatnonzero(fz.node_fits(cluster, nodes, demand))
        if not candidates.size:
            return None
        node = int(candidates[self._random.randrange(candidates.size)])
        if demand.is_fraction:
            gpus = np.flatnonzero(fits[node])
            return Choice(node, (int(gpus[self._random.randrange(gpus.size)]),))
        return Choice(node, _gpus_for(cluster, node, demand, NO_GPU))


# ---- registry -----------------------------------------------------------------------------------

# The default mix when the caller knows nothing of its workload: mostly whole GPUs, some halves and
# quarters, and CPU-only work (which makes every idle GPU share count as a fragment).
DEFAULT_WORKLOAD: tuple[tuple[Demand, float], ...] = (
    (Demand(gpus=1), 4.0),
    (Demand(share_milli=500), 2.0),
    (Demand(share_milli=250), 1.0),
    (Demand(gpus=8), 0.5),
    (Demand(), 1.0),
)


def _fragment_model(workload: Sequence[tuple[Demand, float]]) -> FragmentModel:
    return FragmentModel(typical_pods(workload) or DEFAULT_WORKLOAD)


# The FGD paper's baselines and `spread`, by name; `registry` adds runai-lite's default.
BASELINES: dict[str, Callable[..., PlacementPolicy]] = {
    "fgd": lambda workload=(), **_: ScoredPolicy("fgd", FragmentScorer(_fragment_model(workload))),
    "best-fit": lambda **_: ScoredPolicy("best-fit", _fraction_then(fz.tightest_gpu, _best_fit_score)),
    "dotprod": lambda **_: ScoredPolicy("dotprod", _fraction_then(fz.tightest_gpu, _dot_product_score)),
    "gpu-packing": lambda **_: ScoredPolicy("gpu-packing", _fraction_then(fz.tightest_gpu, _gpu_packing_score)),
    "gpu-clustering": lambda **_: ScoredPolicy("gpu-clustering", _fraction_then(fz.tightest_gpu, _gpu_clustering_score)),
    "spread": lambda **_: ScoredPolicy("spread", _fraction_then(fz.roomiest_gpu, _spread_score)),
    "random": lambda seed=0, **_: RandomPolicy(seed),
}
# `packing` (shared GPUs first, then the busiest node) is the paper's GpuPacking.
BASELINES["packing"] = lambda **kw: BASELINES["gpu-packing"](**kw)
