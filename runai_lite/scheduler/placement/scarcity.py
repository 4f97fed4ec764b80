"""Scarcity in a fragment score: a typical demand weighs by its arrivals over the room it has.

FGD (fragmentation.py) weighs each typical demand m by p_m, the share of arrivals that look like
it, as if every demand could go anywhere. Some can go to few nodes: an 8-GPU job asking 120 CPUs
fits only the 128-CPU nodes, a job pinned to a GPU model only that model's nodes. Breaking into
one of those nodes costs such a demand a place it has almost nowhere else, while the job that
broke in had plenty; FGD charges both the same p_m per idle GPU, and a job that packs well there
(say two 4-GPU jobs that fill a 128-CPU node exactly) takes the scarce node. On the openb
`multigpu*` mixes that is most of what FGD leaves unallocated at 100% arrival: the 120-CPU 8-GPU
jobs fail while whole 96-CPU nodes stay idle (docs/benchmarks.md, §4).

`scarcity_weights` divides each demand's p_m by its supply s_m: the share of the cluster's GPUs on
nodes that could host one job of m when empty (CPU, host memory and GPU count as built, GPU model
allowed). p_m / s_m is m's expected GPU demand per GPU able to take it. The weights are then
scaled back to the GPU demands' total, so the balance with CPU-only work is FGD's. A demand every
node can host keeps FGD's relative weight; a demand no node can host is left at p_m (no placement
helps it). On a cluster where every demand fits every node the score is FGD's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...model import MILLI
from .cluster import Demand, FractionCluster

Variants = list[tuple[tuple[str, ...], float]]  # (allowed GPU models, weight) of one typical row


def scarcity_weights(cluster: FractionCluster, demands: Sequence[Demand], variants: Sequence[Variants],
                     need: np.ndarray, *, host_memory: bool) -> list[Variants]:
    """`variants` with each weight divided by the supply of its demand, scaled back to their total.
    `need` is the share each row needs per GPU on each node ([nodes, rows], fragmentation.py)."""
    gpus = cluster.gpu_count.astype(np.float64)
    total_gpus = gpus.sum()
    scaled: list[Variants] = []
    for row, demand in enumerate(demands):
        hosts = (gpus >= max(demand.gpus, 1)) & (need[:, row] <= MILLI) & (cluster.cpu_capacity >= demand.cpu_milli)
        if host_memory:
            hosts &= cluster.memory_capacity >= demand.memory_mib
        scaled.append([])
        for models, weight in variants[row]:
            supply = gpus[hosts & cluster.nodes_allowing(models)].sum() / total_gpus if total_gpus else 0.0
            scaled[-1].append((models, weight / supply if supply > 0 else weight))
    before = sum(w for row in variants for _, w in row)
    after = sum(w for row in scaled for _, w in row)
    factor = before / after if after > 0 else 1.0
    return [[(models, weight * factor) for models, weight in row] for row in scaled]
