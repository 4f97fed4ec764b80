"""runai-lite's default placement: FGD's measure with host memory, scarcity and every demand seen,
its ties broken to keep nodes whole and CPU usable.

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

Both also see what FGD leaves out of a typical demand:
- its host memory: a demand fits a node's rest only if the node's free memory holds it (the
  median of what those jobs asked), and in the CPU-limited measure the memory limits the jobs of
  it as the CPU does. FGD would put a 4-GPU job on an 8-GPU node whose remaining memory no other
  4-GPU job fits, and count the other four GPUs as usable;
- its scarcity: each demand weighs by its arrivals over the share of the cluster's GPUs that could
  host one of its jobs (scarcity.py). A job only the largest nodes can host then keeps them: FGD
  gives them to whatever packs them best (two 4-GPU jobs that fill a 128-CPU node exactly), and
  the 8-GPU job asking 120 CPUs fails while 96-CPU nodes stay whole;
- the rare demands: the default weighs every demand the cluster has seen, where FGD keeps only the
  most frequent covering 95% of the jobs, which on the openb trace drops every 8-GPU job.

Measurements, and the variants tried and dropped, are in docs/benchmarks.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from .cluster import Demand
from .fragmentation import FragmentModel
from .policies import FragmentScorer, ScoredPolicy


def make_default(workload: Sequence[tuple[Demand, float]]) -> ScoredPolicy:
    model = FragmentModel(workload, measures=("fgd", "cpu-limited"), host_memory=True, scarcity=True)
    return ScoredPolicy("default", FragmentScorer(model, keep_untouched=True, foreign_idle_is_fragment=False),
                        scores_host_memory=model.host_memory)
