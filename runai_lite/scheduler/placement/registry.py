"""Placement policies by name: runai-lite's `default` and the baselines of `policies`.

Apart from both so that `default` (built on `policies`) and the baselines are imported one way only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .cluster import Demand
from .default import make_default
from .policies import BASELINES, DEFAULT_WORKLOAD, PlacementPolicy

_FACTORIES: dict[str, Callable[..., PlacementPolicy]] = {
    "default": lambda workload=(), **_: make_default(workload or DEFAULT_WORKLOAD),
    **BASELINES,
}

POLICY_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def make_policy(name: str, *, workload: Sequence[tuple[Demand, float]] = (), seed: int = 0) -> PlacementPolicy:
    """Build a policy by name. `workload` is the demand mix seen, with counts (`demand_mix`; the
    fragmentation-aware policies weigh it: `fgd` its typical pods, `default` all of it; a
    generic mix when empty); `seed` feeds policies that draw random numbers."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown placement policy {name!r}; known: {', '.join(POLICY_NAMES)}") from None
    return factory(workload=workload, seed=seed)
