"""MIG choice policy: where a profile can go on one MIG GPU, and what it costs.

For a profile at each allowed start, the cheapest way to make room: take over an instance of that
very profile already there; or create it on free slices; or destroy idle instances in the way (or
whose compute slices or instance-cap count is needed); or, when allowed, preempt the jobs using
the instances in the way. Each way also carries how well it packs with running work
(`consolidation_key`, idle slices counted as free), which `allocate` ranks before the number of
idle instances destroyed. A victim's partition is destroyed only if the new layout needs its
slices (or its compute); otherwise the victim's instance is taken over as-is. On a GPU whose MIG
layout an administrator set up (MIG enabled, not dynamic) only its existing instances are used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from ..gpu.catalog import GpuModel, MigProfile
from ..gpu.mig_layout import Placed, fragmentation_key
from .state import GpuState, Instance

VictimCheck = Callable[[str], bool]  # may this job be preempted?
VictimSetCost = Callable[[tuple[str, ...]], tuple | None]  # None: this set is not allowed


@dataclass(frozen=True, slots=True)
class MigTarget:
    """One way to get `profile` at `start` on a GPU."""

    profile: MigProfile
    start: int
    reuse: Instance | None  # an existing instance of the profile at this start, taken over
    destroy: tuple[Instance, ...]
    victims: tuple[str, ...]
    victim_cost: tuple
    fragmentation: tuple[int, int, int]  # of the GPU afterwards; larger is better
    packing: tuple[int, int, int, int] = (0, 0, 0, 0)  # consolidation_key; smaller is better

    @property
    def tier(self) -> int:
        return tier(self.reuse is not None, bool(self.destroy))


def tier(reuses: bool, destroys: bool) -> int:
    """0 reuse an instance, 1 create on free slices, 2 destroy instances first."""
    if reuses:
        return 0
    return 2 if destroys else 1


def consolidation_key(gpu: GpuState, profile: MigProfile, start: int) -> tuple[int, int, int, int]:
    """Smaller is better: how well a new `profile` at `start` packs work on `gpu`, counting idle
    instances as free slices (they can be destroyed at small cost, and keeping them must not push
    new work onto empty GPUs). First the GPU with the most slices already in use (best fit, so
    work consolidates and empty GPUs stay whole for large profiles), then the placement that leaves
    the in-use layout least fragmented (gpu/mig_layout.fragmentation_key, negated)."""
    assert gpu.model is not None
    in_use = tuple(sorted(i.placed() for i in gpu.instances if not i.idle))
    return _packing(gpu.model, in_use, Placed(start, profile.name))


@lru_cache(maxsize=1 << 16)
def _packing(model: GpuModel, in_use: tuple[Placed, ...], new: Placed) -> tuple[int, int, int, int]:
    # Cached: far fewer in-use layouts than whole layouts (idle instances vary) occur in a cluster.
    used_slices = sum(model.profile(p.profile).memory_slices for p in in_use)
    largest, compute, flexibility = fragmentation_key(model, [*in_use, new])
    return (-used_slices, -largest, -compute, -flexibility)


def _no_victims(_: str) -> bool:
    return False


def _free_set(victims: tuple[str, ...]) -> tuple:
    return ()


def targets(
    gpu: GpuState,
    profile: MigProfile,
    *,
    destroy_idle: bool,
    victim: VictimCheck = _no_victims,
    victim_set_cost: VictimSetCost = _free_set,
) -> list[MigTarget]:
    """The cheapest way to place `profile` at each of its starts on `gpu` (none where impossible)."""
    model = gpu.model
    if model is None or not gpu.mig_usable:
        return []
    found = []
    for start in profile.starts:
        if start + profile.memory_slices > model.memory_slices:
            continue
        target = _at_start(gpu, profile, start, destroy_idle, victim, victim_set_cost)
        if target is not None:
            found.append(target)
    return found


def _removable(inst: Instance, destroy_idle: bool, victim: VictimCheck) -> bool:
    if inst.foreign:
        return False
    if inst.job is None:
        return destroy_idle
    return victim(inst.job)


def _at_start(gpu: GpuState, profile: MigProfile, start: int, destroy_idle: bool, victim: VictimCheck,
              victim_set_cost: VictimSetCost) -> MigTarget | None:
    model = gpu.model
    assert model is not None
    end = start + profile.memory_slices
    overlap = [i for i in gpu.instances if i.start < end and start < i.end]
    if len(overlap) == 1 and overlap[0].start == start and overlap[0].profile.name == profile.name:
        inst = overlap[0]
        if inst.foreign or (inst.job is not None and not victim(inst.job)):
            return None
        victims = () if inst.job is None else (inst.job,)
        cost = victim_set_cost(victims)
        if cost is None:
            return None
        return MigTarget(profile, start, inst, (), victims, cost, _fragmentation(gpu, gpu.instances),
                         consolidation_key(gpu, profile, start))
    if not gpu.dynamic:  # a static layout: only its instances, as they are
        return None
    if not all(_removable(i, destroy_idle, victim) for i in overlap):
        return None
    rest = [i for i in gpu.instances if i not in overlap]
    extras = [i for i in rest if _removable(i, destroy_idle, victim)]
    best: tuple | None = None
    chosen: MigTarget | None = None
    for removed in _removal_sets(model.compute_slices, profile, rest, extras):
        destroy = tuple(sorted((*overlap, *removed), key=lambda i: i.start))
        victims = tuple(sorted(i.job for i in destroy if i.job is not None))
        cost = victim_set_cost(victims)
        if cost is None:
            continue
        key = (len(victims), cost, len(destroy))
        if best is None or key < best:
            kept = [i for i in gpu.instances if i not in destroy]
            after = [*(i.placed() for i in kept), Placed(start, profile.name)]
            best, chosen = key, MigTarget(profile, start, None, destroy, victims, cost, _fragmentation(gpu, after),
                                          consolidation_key(gpu, profile, start))
    return chosen


def _removal_sets(total_compute: int, profile: MigProfile, rest: Sequence[Instance],
                  extras: Sequence[Instance]) -> list[tuple[Instance, ...]]:
    """Sets of further instances to remove so that compute and the profile's cap allow it."""

    def ok(removed: tuple[Instance, ...]) -> bool:
        kept = [i for i in rest if i not in removed]
        compute = sum(i.profile.compute for i in kept) + profile.compute
        same = sum(1 for i in kept if i.profile.name == profile.name)
        return compute <= total_compute and same < profile.max_instances

    if ok(()):
        return [()]
    sets = []
    for size in range(1, len(extras) + 1):
        sets.extend(c for c in combinations(extras, size) if ok(c))
    return sets


def _fragmentation(gpu: GpuState, layout: Sequence[Instance] | Sequence[Placed]) -> tuple[int, int, int]:
    assert gpu.model is not None
    placed = [item.placed() if isinstance(item, Instance) else item for item in layout]
    return fragmentation_key(gpu.model, placed)
