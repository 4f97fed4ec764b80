"""Allocate: place a job on free capacity, disrupting no job.

Preference (for `--gpu-memory`, which both MIG and fractions can serve):
  1. a MIG instance, when some dynamic-MIG GPU has room for one without destroying anything. MIG
     GPUs can serve nothing but MIG, so using them first leaves shared GPUs to whole-GPU and
     `--gpu` work;
  2. a fraction of a shared GPU, placed by the placement policy;
  3. a MIG instance after destroying idle instances in the way (no job is disturbed, but
     partitions change).
`--mig-profile` takes steps 1 and 3 only; `--gpu`, whole GPUs and CPU-only jobs go to the policy.
Among MIG choices (in step 1 as in step 3, idle slices count as nearly free): the smallest fitting
profile; then reusing an idle instance of it as it is; then creating it where it packs best with
the work already running (mig_choice.consolidation_key: the GPU with the most slices in use, then
the in-use layout left least fragmented), destroying idle instances in the way at a small cost
(fewest destroyed breaks ties); then the GPU's whole layout least fragmented, then node, GPU and
slice. Creating on an empty GPU rather than destroying an idle partition on a busy one would
scatter work and leave no GPU whole for large profiles (benchmarks/mig_churn.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

from ...gpu.catalog import MigProfile
from ...model import MILLI, Job, RequestKind
from ..mig_choice import MigTarget, VictimCheck, VictimSetCost, targets
from ..placement import Demand, FractionCluster
from ..quota import interactive_room
from ..session import Option, PlacementKind, Session
from ..shared_gpus import demand_of
from ..state import GpuState, canonical_model_name


@dataclass
class Attempt:
    """The best option found, or why none: the smallest charge that the job's quota refused."""

    option: Option | None = None
    quota_charge: Fraction | None = None
    mig_undisturbed: bool = False  # some MIG GPU had room without destroying an instance


    def refused(self, charge: Fraction) -> None:
        if self.quota_charge is None or charge < self.quota_charge:
            self.quota_charge = charge


def allocate(session: Session, job: Job) -> Attempt:
    attempt = Attempt()
    kind = job.request.kind if job.request else None
    if kind in (RequestKind.MEMORY, RequestKind.MIG):
        mig = best_mig(session, job, attempt)
        if mig is not None and attempt.mig_undisturbed:
            attempt.option = mig[0]
            return attempt
        if kind == RequestKind.MEMORY:
            attempt.option = shared_option(session, job, attempt)
            if attempt.option is not None:
                return attempt
        attempt.option = mig[0] if mig is not None else None
        return attempt
    attempt.option = shared_option(session, job, attempt)
    return attempt


def mig_gpus(session: Session, job: Job, extra_host: Callable[[str], tuple[int, int]] | None = None,
             *, one_per_layout: bool = False) -> list[GpuState]:
    """Dynamic-MIG GPUs this job may use: schedulable node, allowed model, host room. With
    `one_per_layout`, only the first usable GPU of each layout signature (they offer the same)."""
    allowed = {canonical_model_name(m) for m in job.gpu_models}
    nodes = session.state.nodes

    def usable(gpu: GpuState) -> bool:
        node = nodes[gpu.node]
        extra_cpu, extra_memory = extra_host(node.name) if extra_host else (0, 0)
        return (node.schedulable and job.may_run_on(node.name) and (not allowed or gpu.model_name in allowed)
                and node.host_fits(job.cpu_milli, job.memory_mib, extra_cpu, extra_memory))

    groups = session.state.mig_groups().values()
    if one_per_layout:
        return [g for g in (next((g for g in group if usable(g)), None) for group in groups) if g is not None]
    return [g for group in groups for g in group if usable(g)]


def profiles_for(session: Session, job: Job, gpu: GpuState) -> tuple[MigProfile, ...]:
    if job.request is None or gpu.model is None:
        return ()
    return session.mig.candidates(job.request, gpu)


def best_mig(
    session: Session,
    job: Job,
    attempt: Attempt,
    *,
    victim: VictimCheck | None = None,
    victim_set_cost: Callable[[Fraction], VictimSetCost] | None = None,
    extra_host: Callable[[str], tuple[int, int]] | None = None,
) -> tuple[Option, MigTarget] | None:
    """The best MIG option over every usable GPU; with `victim`, also by preempting jobs."""
    room = interactive_room(session.state, job)
    best: tuple | None = None
    found: tuple[Option, MigTarget] | None = None
    if victim is None:
        ranked_by_model: dict[str, tuple[tuple[int, MigProfile], ...]] = {}
        for gpu in mig_gpus(session, job, one_per_layout=True):
            assert gpu.model is not None
            if room is None:
                if gpu.model_name not in ranked_by_model:
                    ranked_by_model[gpu.model_name] = tuple(enumerate(profiles_for(session, job, gpu)))
                ranked = ranked_by_model[gpu.model_name]
            else:
                ranked = _within_room(session, job, gpu, room, attempt)
            place = session.mig.best(gpu, ranked)
            if place is None:
                continue
            attempt.mig_undisturbed = attempt.mig_undisturbed or place.undisturbed
            full_key = (*place.key, gpu.node, gpu.index, place.target.start)
            if best is None or full_key < best:
                best = full_key
                found = (_mig_option(session, gpu, place.profile, place.target), place.target)
        return found
    gpus = [g for g in mig_gpus(session, job, extra_host)
            if any(i.job is not None and victim(i.job) for i in g.instances)]
    for gpu in gpus:
        assert gpu.model is not None and victim_set_cost is not None
        largest_run = session.mig.largest_free_run(gpu)
        for rank, profile in enumerate(profiles_for(session, job, gpu)):
            charge = gpu.model.compute_share(profile)
            found_here = targets(gpu, profile, destroy_idle=True, victim=victim,
                                 victim_set_cost=victim_set_cost(charge))
            if found_here and room is not None and charge > room:
                attempt.refused(charge)
                continue
            for target in found_here:
                key = (
                    len(target.victims), target.victim_cost, bool(target.destroy), rank, target.tier,
                    len(target.destroy), largest_run, tuple(-x for x in target.fragmentation),
                    gpu.node, gpu.index, target.start,
                )
                if best is None or key < best:
                    best = key
                    found = (_mig_option(session, gpu, profile, target), target)
    return found


def _within_room(session: Session, job: Job, gpu: GpuState, room: Fraction,
                 attempt: Attempt) -> tuple[tuple[int, MigProfile], ...]:
    """The candidate profiles an interactive job's quota allows (noting those it refuses)."""
    assert gpu.model is not None
    ranked = []
    for rank, profile in enumerate(profiles_for(session, job, gpu)):
        charge = gpu.model.compute_share(profile)
        if charge > room:
            if session.mig.places(gpu, profile):
                attempt.refused(charge)
            continue
        ranked.append((rank, profile))
    return tuple(ranked)


def _mig_option(session: Session, gpu: GpuState, profile: MigProfile, target: MigTarget) -> Option:
    assert gpu.model is not None
    charge = gpu.model.compute_share(profile)
    return Option(PlacementKind.MIG, session.state.nodes[gpu.node], (gpu,), charge, memory_mib=profile.memory_mib, mig=target,
                  victims=target.victims)


def shared_option(session: Session, job: Job, attempt: Attempt) -> Option | None:
    """Whole GPUs, a fraction or a CPU-only place, as the placement policy chooses."""
    demand = demand_of(job)
    if demand is None:
        return None
    demand = session.shared.restricted(demand, job)
    cluster = session.shared.cluster
    room = interactive_room(session.state, job)
    if room is not None:
        demand = _within_room_models(cluster, demand, room)
    choice = session.policy.choose(cluster, demand)
    if choice is None:
        return None
    node, gpus = session.shared.resolve(choice)
    if demand.is_fraction:
        share = cluster.share_on(choice.node, demand)
        memory = demand.gpu_memory_mib or gpus[0].memory_mib * share // MILLI
        option = Option(PlacementKind.FRACTION, node, gpus, Fraction(share, MILLI), share_milli=share, memory_mib=memory,
                        how=f"{session.policy.name} placement")
    elif demand.gpus:
        option = Option(PlacementKind.GPU, node, gpus, Fraction(len(gpus)), memory_mib=gpus[0].memory_mib,
                        how=f"{session.policy.name} placement")
    else:
        option = Option(PlacementKind.CPU, node, (), Fraction(0))
    if room is not None and option.charge > room:
        attempt.refused(option.charge)
        return None
    return option


def _within_room_models(cluster: FractionCluster, demand: Demand, room: Fraction) -> Demand:
    """A `--gpu-memory` share, and so its quota charge, depends on the GPU's memory: keep the
    policy to the GPU models on which an interactive job's charge fits its remaining quota, rather
    than refusing the job because the policy preferred a smaller GPU (it would then preempt for
    the larger one next cycle)."""
    if not demand.gpu_memory_mib:
        return demand
    fitting = {cluster.gpu_model[n] for n in range(len(cluster))
               if Fraction(cluster.share_on(n, demand), MILLI) <= room}
    if demand.gpu_models:
        fitting &= set(demand.gpu_models)
    if not fitting:
        return demand  # no GPU fits the quota: the policy's choice is refused, naming its charge
    return replace(demand, gpu_models=tuple(sorted(fitting)))
