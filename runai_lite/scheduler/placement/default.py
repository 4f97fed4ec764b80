"""runai-lite's default placement: FGD, with deliberate tie-breaking instead of arbitrary order.

FGD's score is an integer (100 * sigmoid of the fragment decrease), so many nodes tie; the paper's
simulator sends ties to the first node name, which, with names in a fixed order, quietly packs work
onto the same nodes. Measured on the openb trace (docs/benchmarks.md), making that packing explicit
helps, while ranking by the exact fragment decrease hurts (it spreads work and breaks up whole nodes
that multi-GPU jobs need). Among options with the same FGD score this policy prefers:

- for GPU work: the node left with the least free CPU and GPU (the paper's best-fit measure), then
  the GPU left with the least free share (best fit on the GPU);
- for CPU-only work: the node with the least idle GPU share, so CPU goes where GPUs are already
  used and is not taken from GPUs that still need it.

Remaining ties go to the smallest node name.
"""

from __future__ import annotations

import numpy as np

from ...model import MILLI
from . import feasible as fz
from .cluster import Demand, FractionCluster
from .fragmentation import FragmentModel
from .policies import MAX_SPEC_CPU, MAX_SPEC_GPU, NO_GPU, FragmentScorer, ScoredPolicy

# Tie-breakers live strictly below one FGD point: the node's in [0, 0.5], the GPU's far below it.
_NODE_WEIGHT = 0.5
_GPU_WEIGHT = 2.0**-20


def _closeness(amount: np.ndarray) -> np.ndarray:
    """1 for nothing left, falling towards 0 as more is left: a bounded 'fuller is better'."""
    return 1.0 / (1.0 + np.maximum(amount, 0.0))


class PackingFragmentScorer(FragmentScorer):
    def __call__(self, cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
        primary, fits = self.option_scores(cluster, nodes, demand)
        idle = fz.idle_milli(cluster, nodes).astype(np.float64)
        if demand.needs_gpu:
            cpu = cluster.cpu[nodes]
            cpu_left = np.where(np.isfinite(cpu), cpu - demand.cpu_milli, 0.0)
            gpu_left = idle - fz.requested_milli(cluster, nodes, demand)
            node_key = _closeness(cpu_left / MAX_SPEC_CPU + gpu_left / MAX_SPEC_GPU)
        else:
            node_key = _closeness(idle / MILLI)
        if demand.is_fraction:
            left_on_gpu = cluster.free[nodes] - cluster.shares(nodes, demand)[:, None]
            gpu_key = _closeness(left_on_gpu / MILLI)
        else:
            gpu_key = 0.0
        scores = np.where(fits, primary + _NODE_WEIGHT * node_key[:, None] + _GPU_WEIGHT * gpu_key, -np.inf)
        best = np.argmax(scores, axis=1)
        node_score = scores[np.arange(len(nodes)), best]
        gpu = np.where(demand.is_fraction & np.isfinite(node_score), best, NO_GPU)
        return node_score, gpu


def make_default(model: FragmentModel) -> ScoredPolicy:
    return ScoredPolicy("default", PackingFragmentScorer(model))
