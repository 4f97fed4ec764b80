"""Placement policies: given free capacity and a demand, pick a node and GPUs.

Each policy scores the feasible (node, GPUs) options; the lowest key wins and ties go to the
lowest node name, then GPU index, so a policy is deterministic for the same input.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from ...model import MILLI
from .cluster import Choice, Demand, FractionCluster


class PlacementPolicy(Protocol):
    name: str

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None: ...


Key = Callable[[FractionCluster, int, tuple[int, ...], Demand], tuple]


class ScoredPolicy:
    """A policy defined by a sort key over feasible options (smaller is better)."""

    def __init__(self, name: str, key: Key):
        self.name = name
        self._key = key

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None:
        best: tuple | None = None
        choice: Choice | None = None
        for node in range(len(cluster)):
            for gpus in cluster.gpu_options(node, demand):
                key = (*self._key(cluster, node, gpus, demand), cluster.names[node], gpus)
                if best is None or key < best:
                    best, choice = key, Choice(node, gpus)
        return choice


def _left_on_gpu(cluster: FractionCluster, node: int, gpus: tuple[int, ...], demand: Demand) -> int:
    if not gpus:
        return 0
    taken = cluster.share_on(node, demand) if demand.is_fraction else MILLI
    return cluster.gpu_free[node][gpus[0]] - taken


def _best_fit(cluster: FractionCluster, node: int, gpus: tuple[int, ...], demand: Demand) -> tuple:
    """Least free share left on the chosen GPU, then least free GPU capacity left on the node."""
    return (_left_on_gpu(cluster, node, gpus, demand), sum(cluster.gpu_free[node]))


def _packing(cluster: FractionCluster, node: int, gpus: tuple[int, ...], demand: Demand) -> tuple:
    """Prefer GPUs already shared, then the busiest node: keeps whole GPUs free."""
    already_shared = bool(gpus) and cluster.gpu_free[node][gpus[0]] < MILLI
    return (not already_shared, sum(cluster.gpu_free[node]), _left_on_gpu(cluster, node, gpus, demand))


def _spread(cluster: FractionCluster, node: int, gpus: tuple[int, ...], demand: Demand) -> tuple:
    """Most free capacity first: spreads load, leaves every GPU as cool as possible."""
    return (-sum(cluster.gpu_free[node]), -_left_on_gpu(cluster, node, gpus, demand))


class RandomPolicy:
    """Uniform choice among feasible options, from a seeded generator (deterministic per seed)."""

    name = "random"

    def __init__(self, seed: int = 0):
        self._random = random.Random(seed)

    def choose(self, cluster: FractionCluster, demand: Demand) -> Choice | None:
        options = [Choice(n, g) for n in range(len(cluster)) for g in cluster.gpu_options(n, demand)]
        return self._random.choice(options) if options else None


_FACTORIES: dict[str, Callable[..., PlacementPolicy]] = {
    "best-fit": lambda **_: ScoredPolicy("best-fit", _best_fit),
    "packing": lambda **_: ScoredPolicy("packing", _packing),
    "spread": lambda **_: ScoredPolicy("spread", _spread),
    "random": lambda seed=0, **_: RandomPolicy(seed),
}
# The fragmentation-aware default lands with the benchmark work; until then best-fit serves.
_FACTORIES["default"] = lambda **kw: _FACTORIES["best-fit"](**kw)

POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_policy(name: str, *, workload: Sequence[tuple[Demand, float]] = (), seed: int = 0) -> PlacementPolicy:
    """Build a policy by name. `workload` is the typical demand mix with weights (used by
    fragmentation-aware policies); `seed` feeds policies that draw random numbers."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown placement policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None
    return factory(workload=workload, seed=seed)
