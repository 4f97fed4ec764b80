"""Placement of whole-GPU and fractional work on shareable (non-dynamic-MIG) GPUs.

The one contract the scheduler and the benchmarks share: a `FractionCluster` (free capacity,
mutable as work is placed), a `Demand`, and a `PlacementPolicy` that picks a `Choice`.
"""

from .cluster import Choice, Demand, FractionCluster
from .fragmentation import demand_mix
from .policies import PlacementPolicy
from .registry import POLICY_NAMES, make_policy

__all__ = ["Choice", "Demand", "FractionCluster", "PlacementPolicy", "POLICY_NAMES", "make_policy", "demand_mix"]
