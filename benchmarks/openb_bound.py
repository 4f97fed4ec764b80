"""An upper bound on the GPU share any placement could allocate to the pods that have arrived: a
linear-programming relaxation solved with HiGHS (scipy.optimize.linprog).

Pods are grouped into kinds (GPU count, share, CPU, memory, allowed models) and nodes into
classes (CPU, memory, GPU count, model). x[k, c] >= 0 is how many pods of kind k go to nodes of
class c, allowed only where one such pod fits an empty node of the class (model, GPU count, CPU,
memory). Maximise the GPU share placed subject to, for every class c with N_c nodes:

    sum_c x[k, c] <= pods of kind k that arrived
    sum_k cpu_k x[k, c]    <= N_c * cpu_c            (and the same for host memory)
    sum_k share_k x[k, c]  <= N_c * G_c * 1000       (GPU share, in thousandths)
    sum_k f_v(k) x[k, c]   <= N_c * G_c              for every threshold v in V

f_v is a dual feasible function of bin packing (Fekete and Schepers 2001): per GPU a pod counts 1
if it takes more than 1 - v of it, its share if between v and 1 - v, 0 below v; any set of pods
that fits on one GPU counts at most 1 in total, so the GPUs of a class bound the sum. V holds 1/2
and, for each share s > 1/2 that arrived, 1 - s + 1/1000: then a pod of share s counts as a whole
GPU except to pods smaller than 1 - s (what strands the 0.19 GPU beside every 0.81-GPU pod).
A whole-GPU pod counts 1 per GPU under every f_v.

Why it is a valid bound: any placement, by any policy, online or offline, in any order, puts each
placed pod on one node, and the nodes' capacities add up over a class, so its counts satisfy every
constraint above. The LP's optimum is
therefore at least the best possible allocation. It relaxes integrality and per-node packing (a pod
may straddle nodes in the LP), so it is optimistic: the gap between a policy and the bound is an
upper bound on what any policy could still gain, not a gap that a policy must close.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np

from benchmarks.openb_trace import TraceNode
from runai_lite.model import MILLI
from runai_lite.scheduler.placement import Demand


def _per_gpu(demand: Demand) -> int:
    return demand.share_milli if demand.is_fraction else (MILLI if demand.gpus else 0)


def _gpu_milli(demand: Demand) -> int:
    return demand.share_milli if demand.is_fraction else demand.gpus * MILLI


def _dual_feasible(demand: Demand, v: int) -> float:
    """f_v of one pod, summed over its GPUs (v in thousandths, at most 500)."""
    if not demand.is_fraction:
        return float(demand.gpus)
    share = demand.share_milli
    if share > MILLI - v:
        return 1.0
    return share / MILLI if share >= v else 0.0


def _fits_empty(demand: Demand, node: tuple[int, int, int, str]) -> bool:
    cpu, memory, gpus, model = node
    if demand.cpu_milli > cpu or demand.memory_mib > memory:
        return False
    if demand.needs_gpu:
        if gpus < max(demand.gpus, 1) or _per_gpu(demand) > MILLI:
            return False
        if demand.gpu_models and model not in demand.gpu_models:
            return False
    return True


def allocation_bound(nodes: Sequence[TraceNode], demands: Sequence[Demand]) -> int:
    """The LP bound, in GPU thousandths, on what can be allocated to `demands` on `nodes`."""
    from scipy.optimize import linprog  # only the benchmarks need SciPy

    kinds = Counter(d for d in demands if d.needs_gpu)  # CPU-only pods allocate no GPU share:
    # leaving them out only loosens the CPU and memory constraints, so the bound stays valid.
    classes = Counter((n.cpu_milli, n.memory_mib, n.gpus, n.model) for n in nodes if n.gpus)
    if not kinds or not classes:
        return 0
    kind_list, class_list = list(kinds), list(classes)
    pairs = [(k, c) for k, kind in enumerate(kind_list) for c, cls in enumerate(class_list) if _fits_empty(kind, cls)]
    if not pairs:
        return 0
    count = len(pairs)
    k_index = np.array([k for k, _ in pairs])
    c_index = np.array([c for _, c in pairs])
    gain = np.array([_gpu_milli(kind_list[k]) for k in k_index], dtype=np.float64)
    rows, bounds = [], []
    # Pods of each kind: at most those that arrived.
    for k, kind in enumerate(kind_list):
        rows.append(k_index == k)
        bounds.append(kinds[kind])
    thresholds = sorted({MILLI // 2} | {MILLI - d.share_milli + 1 for d in kind_list if d.share_milli * 2 > MILLI})
    for c, (cpu, memory, gpus, _model) in enumerate(class_list):
        on = c_index == c
        n = classes[class_list[c]]
        for per_pod, capacity in (
            ([kind_list[k].cpu_milli for k in k_index], n * cpu),
            ([kind_list[k].memory_mib for k in k_index], n * memory),
            ([_gpu_milli(kind_list[k]) for k in k_index], n * gpus * MILLI),
            *(([_dual_feasible(kind_list[k], v) for k in k_index], n * gpus) for v in thresholds),
        ):
            rows.append(np.where(on, per_pod, 0))
            bounds.append(capacity)
    a_ub = np.array(rows, dtype=np.float64)
    result = linprog(-gain, A_ub=a_ub, b_ub=np.array(bounds, dtype=np.float64), bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"the LP bound did not solve: {result.message}")
    return int(np.floor(-result.fun + 1e-6))


def bound_curve(nodes: Sequence[TraceNode], sequence: Sequence[Demand], points: Sequence[int]) -> dict[int, float]:
    """At each arrival point (% of GPU capacity): the bound, as % of capacity, for the pods that
    arrived by the end of that point's bin. A replay's figure at point p is the mean allocation over
    the pods whose arrival rounds to p, so up to p + 0.5%; allocation only grows with arrivals, so
    the bound at the bin's end bounds that mean too."""
    capacity = sum(n.gpus for n in nodes) * MILLI
    arrived = np.cumsum([_gpu_milli(d) for d in sequence])
    curve = {}
    for point in points:
        prefix = int(np.searchsorted(arrived, (point + 0.5) / 100 * capacity, side="right"))
        curve[point] = round(100 * allocation_bound(nodes, sequence[:prefix]) / capacity, 2)
    return curve
