"""The fragmentation measure of FGD (Weng et al., USENIX ATC '23), vectorised over nodes.

A node's fragment F is the GPU share it holds idle that the typical workload could not use,
weighted by how often each typical demand m arrives (p_m):

    F(node) = sum_m p_m * F_m(node)
    F_m     = all idle share, if m needs no GPU, may not use the node's model, or does not fit
              (CPU, host memory where the model reads it, or fewer than m's GPU count with
              enough free share);
              else the idle share on the GPUs too small for m.

Two measures can be computed from the same parts (`measures`, in order of priority):
- "fgd": the paper's;
- "cpu-limited": FGD counts every big-enough GPU as usable by m as soon as one m fits the node's
  free CPU, so a node with six idle GPUs and CPU for one more job looks unfragmented. Here m can
  use at most (jobs of m the free CPU, and host memory where the model reads it, allow) x (m's
  share per job) of the idle share; the rest is fragment too. runai-lite's default policy breaks
  FGD's ties with it (docs/benchmarks.md).

The weights p_m are FGD's (arrival shares) or, with `scarcity`, arrival shares over the share of
the cluster able to host m (scarcity.py).

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
from .scarcity import scarcity_weights

# Bounds the (typical x nodes x GPUs) temporaries on very large clusters.
_CHUNK = 2048
MEASURES = ("fgd", "cpu-limited")


class FragmentModel:
    """The typical workload: demands with their arrival weights (normalised to sum to 1), and how
    a demand fits a node (`host_memory`) and weighs (`scarcity`).

    Typical demands that differ only in the GPU models they allow are kept as one row whose weight
    on a node is the summed weight of those allowed there (a demand that may not use a node counts
    all its idle share as fragment, exactly what the row's missing weight does): model-constrained
    workloads then cost no more to score than unconstrained ones."""

    def __init__(self, workload: Sequence[tuple[Demand, float]], *, measures: Sequence[str] = ("fgd",),
                 host_memory: bool = False, scarcity: bool = False):
        unknown = set(measures) - set(MEASURES)
        if unknown or not measures:
            raise ValueError(f"fragment measures must be among {MEASURES}, got {tuple(measures)}")
        self.measures = tuple(measures)
        # FGD's typical demand fits a node by CPU and GPUs alone; with `host_memory` it must also
        # fit the node's free host memory (each typical demand's is the median of the jobs it
        # stands for, `demand_mix`).
        self.host_memory = host_memory
        # FGD weighs a typical demand by its arrivals; with `scarcity`, by its arrivals over the
        # share of the cluster able to host it (scarcity.py).
        self.scarcity = scarcity
        total = float(sum(weight for _, weight in workload))
        if total <= 0:
            raise ValueError("a fragmentation model needs a workload with positive weights")
        self.cpu_weight = sum(weight for demand, weight in workload if not demand.needs_gpu) / total
        rows: dict[Demand, list[tuple[tuple[str, ...], float]]] = {}
        for demand, weight in workload:
            if demand.needs_gpu:
                memory = demand.memory_mib if host_memory else 0
                rows.setdefault(replace(demand, gpu_models=(), memory_mib=memory, slots=None), []).append(
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
        self.memory_need = np.array([d.memory_mib for d in demands], dtype=np.float64)
        self.memory_need_at_least_1 = np.maximum(self.memory_need, 1)
        # Per row: (allowed models, weight) of its demands, the weights scarcity-scaled if asked.
        self.variants = model.variants
        if model.scarcity:
            self.variants = scarcity_weights(cluster, demands, model.variants, self.need,
                                             host_memory=model.host_memory)
        # Per (node, row): the weight of the row's demands allowed on the node's GPU model.
        self.allowed_weight = np.zeros((n, count))
        for row, variants in enumerate(self.variants):
            for models, weight in variants:
                self.allowed_weight[:, row] += weight * cluster.nodes_allowing(models)
        self.small_idle = np.zeros((n, count))  # idle share on GPUs too small for m
        self.big_enough = np.zeros((n, count), dtype=np.int64)  # GPUs with share >= m's need
        self.idle = np.zeros(n)
        self.fragment = np.zeros((len(model.measures), n))
        self.seen = np.full(n, -1, dtype=np.int64)

    def _combine(self, small_idle, big_enough, idle, cpu, memory, nodes) -> np.ndarray:
        """F[measure, ...] from its parts: `small_idle` and `big_enough` are [K, (options,) rows],
        `idle`, `cpu` and `memory` (free host memory) [K, (options)] (broadcastable).

        F = sum_m p_m F_m with F_m = idle where m cannot use the node, so F = idle - sum_m p_m *
        (idle share m can use): only the demands allowed on the node (their weight) subtract."""
        extra = (slice(None), None) if small_idle.ndim == 3 else (slice(None),)
        idle_m, cpu_m, memory_m = idle[..., None], cpu[..., None], memory[..., None]
        usable = (cpu_m >= self.cpu_need) & (big_enough >= self.gpus)
        if self.model.host_memory:
            usable &= memory_m >= self.memory_need
        weight = np.where(usable, self.allowed_weight[nodes][extra], 0.0)
        usable_idle = idle_m - small_idle  # idle share on GPUs big enough for each demand
        out = np.empty((len(self.model.measures), *usable_idle.shape[:-1]))
        for row, measure in enumerate(self.model.measures):
            if measure == "fgd":
                used = usable_idle
            else:
                jobs = np.floor(cpu_m / self.cpu_need_at_least_1)
                if self.model.host_memory:
                    jobs = np.minimum(jobs, np.floor(memory_m / self.memory_need_at_least_1))
                used = np.minimum(usable_idle, jobs * self.per_job[nodes][extra])
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
                                                   self.idle[part], cluster.cpu[part], cluster.memory[part], part)
            self.seen[part] = cluster.node_version[part]

    def fraction_after(self, nodes: np.ndarray, share: np.ndarray, cpu_milli: int, memory_mib: int) -> np.ndarray:
        """F[measure, K, G] after taking `share` from GPU g of each node (for every slot g), and
        the CPU and host memory given."""
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
        memory = (self.cluster.memory[nodes] - memory_mib)[:, None]
        return self._combine(small, big, idle, cpu, memory, nodes)

    def whole_after(self, nodes: np.ndarray, gpus: int, cpu_milli: int, memory_mib: int) -> np.ndarray:
        """F[measure, K] after taking `gpus` fully free GPUs (and CPU and host memory) of each
        node; `gpus` may be 0."""
        need = self.need[nodes]
        small = self.small_idle[nodes] - gpus * MILLI * (MILLI < need)
        big = self.big_enough[nodes] - gpus * (MILLI >= need)
        idle = self.idle[nodes] - gpus * MILLI
        return self._combine(small, big, idle, self.cluster.cpu[nodes] - cpu_milli,
                             self.cluster.memory[nodes] - memory_mib, nodes)


def demand_mix(demands: Sequence[Demand]) -> list[tuple[Demand, float]]:
    """Every distinct demand with its count, most frequent first (ties by larger CPU, share, GPU
    count, model list, as the FGD artifact orders its typical pods). Demands differing only in
    host memory are one: its memory is the median of theirs (`FragmentModel(host_memory=True)`
    reads it; FGD ignores host memory)."""
    counts: dict[Demand, int] = {}
    memories: dict[Demand, list[int]] = {}
    for demand in demands:
        key = replace(demand, memory_mib=0)
        counts[key] = counts.get(key, 0) + 1
        memories.setdefault(key, []).append(demand.memory_mib)
    return [(replace(demand, memory_mib=_median(memories[demand])), float(count))
            for demand, count in sorted(counts.items(), key=_frequency_order, reverse=True)]


def typical_pods(mix: Sequence[tuple[Demand, float]], coverage: float = 0.95) -> list[tuple[Demand, float]]:
    """FGD's typical workload (the artifact's "typical pods", popularity threshold 95%): the most
    frequent demands of `mix` that together make up `coverage` of its weight, with host memory
    left out of each."""
    ranked = sorted(((replace(d, memory_mib=0), w) for d, w in mix), key=_frequency_order, reverse=True)
    wanted = coverage * sum(w for _, w in ranked)
    chosen: list[tuple[Demand, float]] = []
    covered = 0.0
    for demand, weight in ranked:
        if covered >= wanted:
            break
        chosen.append((demand, weight))
        covered += weight
    return chosen


def _frequency_order(item: tuple[Demand, float]) -> tuple:
    d, n = item
    milli = d.share_milli or d.gpu_memory_mib or (MILLI if d.gpus else 0)
    return (n, d.cpu_milli, milli, max(d.gpus, int(d.is_fraction)), "|".join(d.gpu_models))


def _median(values: list[int]) -> int:
    """The lower median: a host memory half the jobs ask for at most."""
    return sorted(values)[(len(values) - 1) // 2]
