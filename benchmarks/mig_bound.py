"""An upper bound on how many jobs of the MIG churn replay any scheduler could serve: a
linear-programming relaxation over time and GPU capacity, solved with HiGHS (scipy.optimize.linprog).

Jobs are memory requests arriving at `at` and leaving at `leaves`; the cluster has GPU kinds: dynamic
MIG GPUs (a catalog model: compute and memory slices, profiles) and plain GPUs shared by fractions
(a memory size). A job is *served* when it starts on arrival and runs until it leaves: never queued,
never preempted. x[j, k] >= 0 is job j served on GPU kind k (only where one fits an empty GPU of that
kind); maximise the jobs served subject to sum_k x[j, k] <= 1 and, at every instant t where the jobs
present (at <= t < leaves) are a maximal set, per kind k with n_k GPUs:

    MIG:   sum_j compute_jk x[j, k] <= n_k * compute slices;   sum_j slices_jk x[j, k] <= n_k * memory slices
    plain: sum_j share_jk x[j, k]   <= n_k * 1000;             sum_j f_v(share_jk) x[j, k] <= n_k  (v in V)

where compute_jk and slices_jk are the fewest compute and memory slices of any profile of k with
enough memory for j, share_jk = ceil(memory x 1000 / GPU memory), and f_v is the dual feasible
function of bin packing used by `openb_bound` (V: 1/2 and 1 - s + 1/1000 for every share s > 1/2).

Why it is valid: in any schedule, by any scheduler, online or offline, the jobs it serves are all
running at every instant between their arrival and their departure, each on one GPU; a MIG instance
of a profile with enough memory takes at least compute_jk and slices_jk of its GPU's slices, and the
fractions on one plain GPU add up to at most 1000 thousandths and count at most 1 under every f_v.
So the schedule's served jobs satisfy every constraint, and the LP's optimum is at least their
number. Only instants where the present set is maximal (the last arrival before a departure) are
needed: every other instant's present set is contained in one of theirs. It is optimistic: jobs may
be taken in part, and per-GPU placement (MIG start slices, instance caps) is relaxed.

Why "served" and not "started before it left": a job that may start any time before it leaves can
be started just before it leaves, where it meets only the jobs leaving at the same instant; the
best possible count of jobs that started is then every job that fits an empty GPU (100% here),
a bound that says nothing. Starting on arrival and running to the end is what a user wants anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from runai_lite.gpu.catalog import GpuModel
from runai_lite.model import MILLI


@dataclass(frozen=True)
class GpuKind:
    """`count` GPUs of one kind: dynamic MIG (`mig` is its catalog model) or shared by fractions."""

    name: str
    count: int
    memory_mib: int
    mig: GpuModel | None = None


@dataclass(frozen=True)
class Stay:
    """A job: GPU memory wanted, arrival, departure (at <= t < leaves)."""

    memory_mib: int
    at: float
    leaves: float


def mig_usage(memory_mib: int, model: GpuModel) -> tuple[int, int] | None:
    """(fewest compute slices, fewest memory slices) of a profile with at least `memory_mib`."""
    fitting = [p for p in model.profiles if p.memory_mib >= memory_mib]
    if not fitting:
        return None
    return min(p.compute for p in fitting), min(p.memory_slices for p in fitting)


def share_of(memory_mib: int, gpu_memory_mib: int) -> int | None:
    share = -(-memory_mib * MILLI // gpu_memory_mib)
    return share if share <= MILLI else None


def _dual_feasible(share: int, v: int) -> float:
    if share > MILLI - v:
        return 1.0
    return share / MILLI if share >= v else 0.0


def maximal_instants(stays: Sequence[Stay]) -> list[float]:
    """The arrival times after which the set of present jobs is maximal: each is the last arrival
    before a departure (a departure at the same instant happens first, as in the replay)."""
    events = sorted([(s.at, 1) for s in stays] + [(s.leaves, 0) for s in stays])
    instants, last_arrival = [], None
    for time, is_arrival in events:
        if is_arrival:
            last_arrival = time
        elif last_arrival is not None and last_arrival < time:
            instants.append(last_arrival)
            last_arrival = None
    if last_arrival is not None:
        instants.append(last_arrival)
    return instants


def served_bound(stays: Sequence[Stay], kinds: Sequence[GpuKind]) -> float:
    """The LP bound on the number of jobs any scheduler could serve (start on arrival, run to the end)."""
    from scipy.optimize import linprog  # only the benchmarks need SciPy
    from scipy.sparse import coo_array

    columns: list[tuple[int, int, tuple[float, ...]]] = []  # (job, kind, usage per resource row of the kind)
    resources: list[list[tuple[str, float]]] = []  # per kind: (resource, capacity)
    for k, kind in enumerate(kinds):
        if kind.mig is not None:
            resources.append([("compute", kind.count * kind.mig.compute_slices),
                              ("slices", kind.count * kind.mig.memory_slices)])
            for j, stay in enumerate(stays):
                usage = mig_usage(stay.memory_mib, kind.mig)
                if usage is not None:
                    columns.append((j, k, (float(usage[0]), float(usage[1]))))
            continue
        shares = {j: s for j, stay in enumerate(stays) if (s := share_of(stay.memory_mib, kind.memory_mib)) is not None}
        thresholds = sorted({MILLI // 2} | {MILLI - s + 1 for s in shares.values() if 2 * s > MILLI})
        resources.append([("share", kind.count * MILLI), *((f"f{v}", float(kind.count)) for v in thresholds)])
        for j, share in shares.items():
            columns.append((j, k, (float(share), *(_dual_feasible(share, v) for v in thresholds))))
    if not columns:
        return 0.0
    instants = np.array(maximal_instants(stays))
    row_base = np.cumsum([0] + [len(r) for r in resources])  # first row of each kind, per instant
    per_instant = int(row_base[-1])
    rows, cols, values = [], [], []
    for c, (j, k, usage) in enumerate(columns):
        rows.append(j)  # each job served at most once
        cols.append(c)
        values.append(1.0)
        stay = stays[j]
        present = np.flatnonzero((instants >= stay.at) & (instants < stay.leaves))
        for r, amount in enumerate(usage):
            if amount:
                rows.extend(len(stays) + present * per_instant + row_base[k] + r)
                cols.extend([c] * len(present))
                values.extend([amount] * len(present))
    capacity = [cap for kind_resources in resources for _, cap in kind_resources]
    b_ub = np.concatenate([np.ones(len(stays)), np.tile(np.array(capacity, dtype=np.float64), len(instants))])
    a_ub = coo_array((values, (rows, cols)), shape=(len(b_ub), len(columns))).tocsr()
    result = linprog(-np.ones(len(columns)), A_ub=a_ub, b_ub=b_ub, bounds=(0, None), method="highs")
    if result.status != 0:
        raise RuntimeError(f"the LP bound did not solve: {result.message}")
    return -result.fun


def served_bound_pct(stays: Sequence[Stay], kinds: Sequence[GpuKind]) -> float:
    """The bound as % of the jobs, rounded down to 0.01 (never above what the LP allows)."""
    if not stays:
        return 100.0
    return math.floor(10000 * served_bound(stays, kinds) / len(stays) + 1e-6) / 100
