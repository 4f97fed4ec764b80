"""The fragmentation measure of FGD (Weng et al., USENIX ATC '23), vectorised over nodes.

A node's fragment F is the GPU share it holds idle that the typical workload could not use,
weighted by how often each typical demand m arrives (p_m):

    F(node) = sum_m p_m * F_m(node)
    F_m     = all idle share, if m needs no GPU, may not use the node's model, or does not fit
              (CPU, or fewer than m's GPU count with enough free share);
              else the idle share on the GPUs too small for m.

Two measures can be computed from the same parts (`measures`, in order of priority):
- "fgd": the paper's;
- "cpu-limited": FGD counts every big-enough GPU as usable by m as soon as one m fits the node's
  free CPU, so a node with six idle GPUs and CPU for one more job looks unfragmented. Here m can
  use at most (jobs of m the free CPU allows) x (m's share per job) of the idle share; the rest is
  fragment too. runai-lite's default policy breaks FGD's ties with it (docs/benchmarks.md).

Placing a demand changes F of one node only. `FragmentTable` keeps per node and typical demand the
pieces F is made of (idle on too-small GPUs, GPUs big enough, total idle) and recomputes them only
for nodes whose version changed, so scoring a demand costs a few array operations over the nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ...model import MILLI
from .cluster import Demand, FractionCluster

# Bounds the (typical x nodes x GPUs) temporaries on very large clusters.
_CHUNK = 2048
MEASURES = ("fgd", "cpu-limited")


class FragmentModel:
    """The typical workload: demands with their arrival weights (normalised to sum to 1).

    Typical demands that differ only in the GPU models they allow are kept as one row whose weight
    on a node is the summed weight of those allowed there (a demand that may not use a node counts
    all its idle share as fragment, exactly what the row's missing weight does): model-constrained
    workloads then cost no more to score than unconstrained ones."""

    def __init__(self, workload: Sequence[tuple[Demand, float]], *, measures: Sequence[str] = ("fgd",)):
        unknown = set(measures) - set(MEASURES)
        if unknown or not measures:
            raise ValueError(f"fragment measures must be among {MEASURES}, got {tuple(measures)}")
        self.measures = tuple(measures)
        total = float(sum(weight for _, weight in workload))
        if total <= 0:
            raise ValueError("a fragmentation model needs a workload with positive weights")
        self.cpu_weight = sum(weight for demand, weight in workload if not demand.needs_gpu) / total
        rows: dict[Demand, list[tuple[tuple[str, ...], float]]] = {}
        for demand, weight in workload:
            if demand.needs_gpu:
                rows.setdefault(replace(demand, gpu_models=(), memory_mib=0, slots=None), []).append(
                    (demand.gpu_models, weight / total))
        self.demands = list(rows)
        self.variants = list(rows.values())  # per row: (allowed models, weight) of the demands in it
        self.weights = np.array([sum(w for _, w in variants) for variants in self.variants], dtype=np.float64)

    def table(self, cluster: FractionCluster) -> FragmentTable:
        return FragmentTable(self, cluster)


class FragmentTable:
    """F (one row per measure) and its parts for every node of one cluster, refreshed lazily by
    node version. F arrays carry a leading measure axis.

    The parts are stored node-major with the typical demands last: F's weighted sum over them is
    then one contiguous reduction per node (and per option), computed the same way whichever
    other nodes are scored in the same call, so a node's score never depends on its batch (the
    score caches, grouping nodes by state, and cold and warm policies all rely on that: a
    difference in the last bit can move FGD's truncated score)."""

    def __init__(self, model: FragmentModel, cluster: FractionCluster):
        self.model = model
        self.cluster = cluster
        every = np.arange(len(cluster))
        demands = model.demands
        count, n = len(demands), len(every)
        # Static per (node, typical demand): the share it needs per GPU, whether the model is allowed.
        self.need = np.array([cluster.shares(every, d) if d.is_fraction else np.full(n, MILLI)
                              for d in demands], dtype=np.int64).reshape(count, n).T.copy()
        self.gpus = np.array([max(d.gpus, 1) for d in demands], dtype=np.int64)
        self.per_job = self.need * self.gpus  # share one job of m takes on the node, in total
        self.cpu_need = np.array([d.cpu_milli for d in demands], dtype=np.float64)
        self.cpu_need_at_least_1 = np.maximum(self.cpu_need, 1)
        # Per (node, row): the weight of the row's demands allowed on the node's GPU model.
        self.allowed_weight = np.zeros((n, count))
        for row, variants in enumerate(model.variants):
            for models, weight in variants:
                self.allowed_weight[:, row] += weight * cluster.models_allowed(every, models)
        self.small_idle = np.zeros((n, count))  # idle share on GPUs too small for m
        self.big_enough = np.zeros((n, count), dtype=np.int64)  # GPUs with share >= m's need
        self.idle = np.zeros(n)
        self.fragment = np.zeros((len(model.measures), n))
        self.seen = np.full(n, -1, dtype=np.int64)

    def _combine(self, small_idle, big_enough, idle, cpu, nodes) -> np.ndarray:
        """F[measure, ...] from its parts: `small_idle` and `big_enough` are [K, (options,) rows],
        `idle` and `cpu` [K, (options)] (broadcastable).

        F = sum_m p_m F_m with F_m = idle where m cannot use the node, so F = idle - sum_m p_m *
        (idle share m can use): only the demands allowed on the node (their weight) subtract."""
        extra = (slice(None), None) if small_idle.ndim == 3 else (slice(None),)
        idle_m, cpu_m = idle[..., None], cpu[..., None]
        usable = (cpu_m >= self.cpu_need) & (big_enough >= self.gpus)
        weight = np.where(usable, self.allowed_weight[nodes][extra], 0.0)
        usable_idle = idle_m - small_idle  # idle share on GPUs big enough for each demand
        out = np.empty((len(self.model.measures), *usable_idle.shape[:-1]))
        for row, measure in enumerate(self.model.measures):
            if measure == "fgd":
                used = usable_idle
            else:
                jobs_by_cpu = np.floor(cpu_m / self.cpu_need_at_least_1)
                used = np.minimum(usable_idle, jobs_by_cpu * self.per_job[nodes][extra])
            out[row] = idle - (weight * used).sum(axis=-1)
        return out

    def refresh(self, nodes: np.ndarray) -> None:
        cluster = self.cluster
        stale = nodes[self.seen[nodes] != cluster.node_version[nodes]]
        for start in range(0, len(stale), _CHUNK):
            part = stale[start: start + _CHUNK]
            free = cluster.free[part][:, :, None]
            idle_gpu = np.clip(free, 0, None)
            need = self.need[part][:, None, :]
            self.small_idle[part] = (idle_gpu * (free < need)).sum(axis=1)
            self.big_enough[part] = (free >= need).sum(axis=1)
            self.idle[part] = idle_gpu.sum(axis=(1, 2))
            self.fragment[:, part] = self._combine(self.small_idle[part], self.big_enough[part],
                                                   self.idle[part], cluster.cpu[part], part)
            self.seen[part] = cluster.node_version[part]

    def fraction_after(self, nodes: np.ndarray, share: np.ndarray, cpu_milli: int) -> np.ndarray:
        """F[measure, K, G] after taking `share` from GPU g of each node (for every slot g)."""
        free = self.cluster.free[nodes]
        after = free - share[:, None]
        need = self.need[nodes][:, None, :]
        free_big, after_big = free[:, :, None] >= need, after[:, :, None] >= need
        # A GPU's share counts as "too small" for m when below m's need; absent slots (-1) never.
        small = (self.small_idle[nodes][:, None, :] - np.where(free_big, 0, np.maximum(free, 0)[:, :, None])
                 + np.where(after_big, 0, np.maximum(after, 0)[:, :, None]))
        big = self.big_enough[nodes][:, None, :] - free_big + after_big
        idle = self.idle[nodes][:, None] - share[:, None]
        cpu = (self.cluster.cpu[nodes] - cpu_milli)[:, None]
        return self._combine(small, big, idle, cpu, nodes)

    def whole_after(self, nodes: np.ndarray, gpus: int, cpu_milli: int) -> np.ndarray:
        """F[measure, K] after taking `gpus` fully free GPUs (and CPU) of each node; `gpus` may be 0."""
        need = self.need[nodes]
        small = self.small_idle[nodes] - gpus * MILLI * (MILLI < need)
        big = self.big_enough[nodes] - gpus * (MILLI >= need)
        idle = self.idle[nodes] - gpus * MILLI
        return self._combine(small, big, idle, self.cluster.cpu[nodes] - cpu_milli, nodes)


def typical_workload(demands: Sequence[Demand], coverage: float = 0.95) -> list[tuple[Demand, float]]:
    """The most frequent demands that together make up `coverage` of all, with their counts: the
    FGD artifact's "typical pods" (popularity threshold 95%; host memory is not part of a typical
    demand; most frequent first, ties by larger CPU, share, GPU count, model list)."""
    counts: dict[Demand, int] = {}
    for demand in demands:
        key = replace(demand, memory_mib=0)
        counts[key] = counts.get(key, 0) + 1

    def order(item: tuple[Demand, int]) -> tuple:
        d, n = item
        milli = d.share_milli or d.gpu_memory_mib or (MILLI if d.gpus else 0)
        return (n, d.cpu_milli, milli, max(d.gpus, int(d.is_fraction)), "|".join(d.gpu_models))

    ranked = sorted(counts.items(), key=order, reverse=True)
    wanted = coverage * len(demands)
    chosen: list[tuple[Demand, float]] = []
    covered = 0
    for demand, count in ranked:
        if covered >= wanted:
            break
        chosen.append((demand, float(count)))
        covered += count
    return chosen
