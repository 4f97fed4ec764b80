"""runai-lite's default placement: FGD with a CPU-aware fragment measure.

FGD (Weng et al., ATC '23) scores a placement by how much it lowers the node's GPU fragment with
respect to the typical workload. Its measure counts a node's big-enough GPUs as usable by a typical
job as soon as one such job fits the node's free CPU; on the openb trace much of what stays
unallocated is GPU share stranded next to exhausted CPU. The default policy uses the same score
with the CPU-limited measure (`FragmentModel(cpu_limited=True)`): a typical job can use only as
much idle share as the free CPU lets jobs like it run. Everything else (integer score, GPU choice,
ties to the smallest node name) is FGD's.

Measured against FGD on the same replay (docs/benchmarks.md): fewer whole-GPU and fractional jobs
fail; more 8-GPU jobs do, because a node's CPU now counts as part of its usefulness for small jobs.
Options explored and not kept are listed there too.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cluster import Demand
from .fragmentation import FragmentModel
from .policies import FragmentScorer, ScoredPolicy


def make_default(workload: Sequence[tuple[Demand, float]]) -> ScoredPolicy:
    return ScoredPolicy("default", FragmentScorer(FragmentModel(workload, cpu_limited=True)))
