"""Preempt and reclaim: make room for a job by stopping running preemptible work.

Victims (quota.victim_candidates, quota.ReclaimRule): in the job's own project, only jobs of
strictly lower priority (preempt); in other projects, only work of projects above their deserved
quota, and only while the job's project stays within its own (reclaim). Among the ways to make room, choose the fewest
victims, then over-quota work before in-quota work, then the lowest priorities, then the most
recently started; then MIG before shared GPUs, then the MIG preferences of `allocate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from itertools import combinations

from ...model import MILLI, Job
from ..quota import ReclaimRule, interactive_room, victim_candidates
from ..session import Option, PlacementKind, Session
from ..shared_gpus import demand_of
from ..state import ClusterState, GpuState
from .allocate import Attempt, best_mig

_EXACT_LIMIT = 14  # holders of one GPU beyond which the victim set is chosen greedily


def victim_cost(over_quota: dict[str, bool], victims: Sequence[Job]) -> tuple:
    """Smaller is better: in-quota victims, then priorities (highest first), then start times
    (oldest first, later is better)."""
    in_quota = sum(1 for v in victims if not over_quota.get(v.project, False))
    priorities = tuple(sorted((v.priority for v in victims), reverse=True))
    starts = tuple(-(v.started_at or 0.0) for v in sorted(victims, key=lambda v: (v.started_at or 0.0, v.id)))
    return (in_quota, priorities, starts)


def preempt(session: Session, job: Job) -> Attempt:
    attempt = Attempt()
    if job.request is None:
        return attempt
    state = session.state
    candidates = victim_candidates(state, job)
    if not candidates:
        return attempt

    def victim(vid: str) -> bool:
        return vid in candidates

    over_quota = {p: state.over_quota(p) for p in state.preemptible_running}
    reclaim = ReclaimRule(state, job)
    costs: dict[tuple, tuple | None] = {}  # (charge, victims) -> victim_cost, None = not allowed

    def set_cost(charge: Fraction):
        def cost(victims: tuple[str, ...]) -> tuple | None:
            key = (charge, victims)
            if key not in costs:
                chosen = [state.jobs[v] for v in victims]
                allowed = all(v in candidates for v in victims) and reclaim.allows(charge, chosen)
                costs[key] = victim_cost(over_quota, chosen) if allowed else None
            return costs[key]
        return cost

    freed = _host_freed_by(state, candidates)
    options: list[tuple[tuple, Option]] = []
    mig = best_mig(session, job, attempt, victim=victim, victim_set_cost=set_cost,
                   extra_host=lambda node: freed.get(node, (0, 0)))
    if mig is not None and mig[0].victims and _host_fits_after(state, job, mig[0]):
        option, target = mig
        options.append(((len(option.victims), target.victim_cost, 0), option))
    shared = _shared(session, job, attempt, victim, set_cost)
    if shared is not None:
        options.append(shared)
    if options:
        attempt.option = min(options, key=lambda item: item[0])[1]
    return attempt


def _host_freed_by(state: ClusterState, victims: set[str]) -> dict[str, tuple[int, int]]:
    freed: dict[str, tuple[int, int]] = {}
    for vid in victims:
        node = state.allocations[vid].node
        cpu, memory = freed.get(node, (0, 0))
        freed[node] = (cpu + state.jobs[vid].cpu_milli, memory + state.jobs[vid].memory_mib)
    return freed


def _host_fits_after(state: ClusterState, job: Job, option: Option) -> bool:
    victims = [state.jobs[v] for v in option.victims if state.allocations[v].node == option.node.name]
    return option.node.host_fits(job.cpu_milli, job.memory_mib, sum(v.cpu_milli for v in victims),
                                 sum(v.memory_mib for v in victims))


def _shared(session: Session, job: Job, attempt: Attempt, victim, set_cost) -> tuple[tuple, Option] | None:
    demand = demand_of(job)
    if demand is None or not (demand.gpus or demand.is_fraction):
        return None
    state = session.state
    room = interactive_room(state, job)
    best: tuple | None = None
    found: Option | None = None
    for slot in session.shared.slots:
        if not job.may_run_on(slot.node.name):
            continue
        limit = best[0] if best is not None else MILLI  # more victims than the best so far: skip
        gpus = [g for g in slot.gpus if session.shared.model_allowed(g, demand)]
        if not gpus:
            continue
        if demand.is_fraction:
            proposals = []
            for gpu in gpus:
                share = session.shared.share_on(gpu, demand)
                if share > MILLI:
                    continue
                charge = Fraction(share, MILLI)
                victims = _fraction_victims(state, gpu, share, victim, set_cost(charge), limit)
                if victims is not None:
                    memory = demand.gpu_memory_mib or gpu.memory_mib * share // MILLI
                    proposals.append(Option(PlacementKind.FRACTION, slot.node, (gpu,), charge, share_milli=share,
                                            memory_mib=memory, victims=victims))
        else:
            victims = _whole_gpu_victims(gpus, demand.gpus, victim, set_cost(Fraction(demand.gpus)), limit)
            proposals = []
            if victims is not None:
                chosen_victims, chosen = victims
                proposals.append(Option(PlacementKind.GPU, slot.node, chosen, Fraction(len(chosen)),
                                        memory_mib=chosen[0].memory_mib, victims=chosen_victims))
        for option in proposals:
            if room is not None and option.charge > room:
                attempt.refused(option.charge)
                continue
            cost = set_cost(option.charge)(option.victims)
            if cost is None or not option.victims or not _host_fits_after(state, job, option):
                continue
            key = (len(option.victims), cost, 1, option.node.name, tuple(g.index for g in option.gpus))
            if best is None or key < best:
                best, found = key, option
    return None if found is None else ((best[0], best[1], 1), found)


def _fraction_victims(state: ClusterState, gpu: GpuState, share: int, victim, cost,
                      limit: int) -> tuple[str, ...] | None:
    need = share - gpu.free_milli
    if need <= 0:
        return None  # fits without preemption (the host must be what is short): not ours to solve
    eligible = sorted(((vid, s) for vid, s in gpu.holders.items() if victim(vid)), key=lambda h: (-h[1], h[0]))
    if sum(s for _, s in eligible) < need:
        return None
    count, total = 0, 0
    for _, s in eligible:
        count, total = count + 1, total + s
        if total >= need:
            break
    if count > limit:
        return None
    if len(eligible) > _EXACT_LIMIT:
        greedy = tuple(sorted(vid for vid, _ in eligible[:count]))
        return greedy if cost(greedy) is not None else None
    for size in range(count, min(len(eligible), limit) + 1):
        best: tuple | None = None
        chosen: tuple[str, ...] | None = None
        for combo in combinations(eligible, size):
            if sum(s for _, s in combo) < need:
                continue
            victims = tuple(sorted(vid for vid, _ in combo))
            key = cost(victims)
            if key is not None and (best is None or key < best):
                best, chosen = key, victims
        if chosen is not None:
            return chosen
    return None


def _whole_gpu_victims(gpus: list[GpuState], count: int, victim, cost,
                       limit: int) -> tuple[tuple[str, ...], tuple[GpuState, ...]] | None:
    """The `count` GPUs of one node that are cheapest to clear: fewest victims, then the victim order."""
    clearable = sorted((g for g in gpus if all(victim(h) for h in g.holders)), key=lambda g: (len(g.holders), g.index))
    if len(clearable) < count:
        return None
    if len(clearable) > _EXACT_LIMIT:
        choices = [tuple(clearable[:count])]
    else:
        choices = list(combinations(clearable, count))
    best: tuple | None = None
    found = None
    for chosen in choices:
        victims = tuple(sorted({h for g in chosen for h in g.holders}))
        if len(victims) > (best[0] if best is not None else limit):
            continue
        key = cost(victims)
        if key is not None and (best is None or (len(victims), key) < best):
            best, found = (len(victims), key), (victims, tuple(sorted(chosen, key=lambda g: g.index)))
    return found
