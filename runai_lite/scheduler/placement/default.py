"""runai-lite's default placement: FGD, with its ties broken to keep nodes whole and CPU usable.

FGD (Weng et al., ATC '23) scores a placement by how much it lowers the node's GPU fragment with
respect to the typical workload, as an integer (100 * sigmoid), so many options tie. Its measure
counts a node's big-enough GPUs as usable by a typical job as soon as *one* such job fits the node's
free CPU; much of what stays unallocated is GPU share stranded beside exhausted CPU. The default
policy ranks by FGD's score first, then GPU work prefers nodes already running GPU work (keeping
untouched nodes whole for jobs that need all their GPUs), then, among nodes in use, the same
score computed with the CPU-limited measure (a typical job can use only as much idle share as the
jobs like it that the free CPU can still start), then the smallest node name. Among untouched
nodes the CPU-limited measure is not consulted: it prefers the nodes with the most free CPU, which
are the only ones the largest jobs fit; FGD's own order packs breaking-in work onto the same few.

Both measures count a node's idle share only against the typical demands that may use its GPU
model (confinement.py). FGD counts it against every demand, so taking share on a node of a model
that little of the workload names looks like a large fragment decrease: work that could run
anywhere is drawn to exactly the nodes that pods confined to those models can only use, and they
fail once those nodes are full. Without model constraints in the workload the two are the same.

Measurements, and the variants tried and dropped, are in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cluster import Demand
from .fragmentation import FragmentModel
from .policies import FragmentScorer, ScoredPolicy


def make_default(workload: Sequence[tuple[Demand, float]]) -> ScoredPolicy:
    model = FragmentModel(workload, measures=("fgd", "cpu-limited"))
    return ScoredPolicy("default", FragmentScorer(model, keep_untouched=True, foreign_idle_is_fragment=False))
