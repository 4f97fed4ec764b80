"""GPU-model confinement in a fragment score: how much of the typical workload may not use a node.

FGD's measure (fragmentation.py) counts, for a typical demand that may not use a node's GPU model,
all the node's idle share as that demand's fragment. Consuming idle share there then lowers the
node's fragment by the share taken times the weight of every demand kept off the node: FGD
rewards placing work where few typical demands may go. Those are the nodes of the models that
little of the workload names, which are the only nodes the pods confined to those models can use;
work that could run anywhere is drawn to them first and the confined pods fail once they are full
(docs/benchmarks.md, §4).

`foreign_weight` is, per node, the weight of the typical demands (CPU-only ones aside) that may
not use its model. Subtracting share taken x foreign weight from FGD's fragment decrease gives the
decrease of the measure that counts a node's idle share only against the demands that may use it
(`F'(node) = sum over m allowed on the node, or needing no GPU, of p_m F_m(node)`): idle share a
demand could never use is neither its loss nor its gain. On a cluster of one model, or a workload
that names no model, the weight is 0 everywhere and the score is FGD's exactly.
"""

from __future__ import annotations

import numpy as np

from .fragmentation import FragmentTable


def foreign_weight(table: FragmentTable) -> np.ndarray:
    """Per node: the summed weight of the typical GPU demands that may not use its GPU model (as
    weighted in `table`: scarcity.py may have scaled them)."""
    cluster = table.cluster
    foreign = np.zeros(len(cluster))
    for variants in table.variants:
        for models, weight in variants:
            if models:
                foreign += weight * ~cluster.nodes_allowing(models)
    return foreign
