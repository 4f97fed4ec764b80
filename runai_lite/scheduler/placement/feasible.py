"""Which nodes, and which GPUs on them, can take a demand: the filters every policy shares.

They mirror the FGD simulator's filters: CPU and host memory (kube-scheduler's NodeResourcesFit),
the GPU-model constraint, a fraction needs one GPU with enough free share, whole GPUs need fully
free GPUs.
"""

from __future__ import annotations

import numpy as np

from ...model import MILLI
from .cluster import Demand, FractionCluster


def fraction_options(cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> tuple[np.ndarray, np.ndarray]:
    """For a fractional demand: (fits[K, G], share[K]) — which GPU slots of each node can take it."""
    share = cluster.shares(nodes, demand)
    fits = (cluster.free[nodes] >= share[:, None]) & cluster.hosts_fit(nodes, demand)[:, None]
    return fits, share


def full_gpus(cluster: FractionCluster, nodes: np.ndarray) -> np.ndarray:
    return (cluster.free[nodes] == MILLI).sum(axis=1)


def node_fits(cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> np.ndarray:
    """Whether each of `nodes` can take `demand` at all."""
    if demand.is_fraction:
        return fraction_options(cluster, nodes, demand)[0].any(axis=1)
    fits = cluster.hosts_fit(nodes, demand)
    if demand.gpus:
        fits &= full_gpus(cluster, nodes) >= demand.gpus
    return fits


def tightest_gpu(cluster: FractionCluster, nodes: np.ndarray, fits: np.ndarray) -> np.ndarray:
    """Per node, the fitting GPU with the least free share (lowest index among equals)."""
    return np.argmin(np.where(fits, cluster.free[nodes], np.iinfo(np.int64).max), axis=1)


def roomiest_gpu(cluster: FractionCluster, nodes: np.ndarray, fits: np.ndarray) -> np.ndarray:
    """Per node, the fitting GPU with the most free share (lowest index among equals)."""
    return np.argmax(np.where(fits, cluster.free[nodes], -1), axis=1)


def requested_milli(cluster: FractionCluster, nodes: np.ndarray, demand: Demand) -> np.ndarray:
    """GPU thousandths the demand takes on each node, in total."""
    if demand.is_fraction:
        return cluster.shares(nodes, demand)
    return np.full(nodes.shape, demand.gpus * MILLI, dtype=np.int64)


def idle_milli(cluster: FractionCluster, nodes: np.ndarray) -> np.ndarray:
    return np.clip(cluster.free[nodes], 0, None).sum(axis=1)
