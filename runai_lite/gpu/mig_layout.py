"""MIG layout algebra: which GPU instances fit where on one GPU.

A GPU instance occupies the memory slices `[start, start + memory_slices)` and may start only at
one of its profile's allowed starts. Instances may not overlap, their compute slices may not exceed
the GPU's, and each profile has an instance cap (one `+me`). Pure functions, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .catalog import GpuModel, MigProfile


@dataclass(frozen=True, slots=True, order=True)
class Placed:
    """A profile at a start slice (an existing or planned GPU instance)."""

    start: int
    profile: str


def _mask(start: int, size: int) -> int:
    return ((1 << size) - 1) << start


def occupied_mask(model: GpuModel, layout: Iterable[Placed]) -> int:
    mask = 0
    for placed in layout:
        mask |= _mask(placed.start, model.profile(placed.profile).memory_slices)
    return mask


def compute_used(model: GpuModel, layout: Iterable[Placed]) -> int:
    return sum(model.profile(p.profile).compute for p in layout)


def can_place(model: GpuModel, layout: Sequence[Placed], profile: MigProfile, start: int) -> bool:
    """True when `profile` at `start` fits beside the instances in `layout`."""
    if start not in profile.starts or start + profile.memory_slices > model.memory_slices:
        return False
    if occupied_mask(model, layout) & _mask(start, profile.memory_slices):
        return False
    if compute_used(model, layout) + profile.compute > model.compute_slices:
        return False
    same = sum(1 for p in layout if p.profile == profile.name)
    return same < profile.max_instances


def free_starts(model: GpuModel, layout: Sequence[Placed], profile: MigProfile) -> list[int]:
    """Every start at which `profile` could be created now, lowest first."""
    return [s for s in profile.starts if can_place(model, layout, profile, s)]


def is_valid(model: GpuModel, layout: Sequence[Placed]) -> bool:
    """True when the whole layout could exist at once on the GPU."""
    placed: list[Placed] = []
    for item in sorted(layout):
        if not can_place(model, placed, model.profile(item.profile), item.start):
            return False
        placed.append(item)
    return True


def free_runs(model: GpuModel, layout: Iterable[Placed]) -> list[int]:
    """Lengths of the maximal runs of free memory slices, in slice order."""
    mask = occupied_mask(model, layout)
    runs, current = [], 0
    for slice_index in range(model.memory_slices):
        if mask >> slice_index & 1:
            if current:
                runs.append(current)
            current = 0
        else:
            current += 1
    if current:
        runs.append(current)
    return runs


def placements_left(model: GpuModel, layout: Sequence[Placed]) -> int:
    """How many (profile, start) pairs could still be created: a measure of remaining flexibility."""
    return sum(len(free_starts(model, layout, p)) for p in model.profiles)


def fragmentation_key(model: GpuModel, layout: Sequence[Placed]) -> tuple[int, int, int]:
    """Larger is better: largest free run, then free compute, then placements still possible."""
    runs = free_runs(model, layout)
    return (max(runs, default=0), model.compute_slices - compute_used(model, layout), placements_left(model, layout))


def find_layout(model: GpuModel, profiles: Sequence[str], existing: Sequence[Placed] = ()) -> list[Placed] | None:
    """A placement for every profile in `profiles` beside `existing`, or None if none exists.

    Backtracking over starts, largest profiles first; the GPUs have at most 8 slices, so the
    search is tiny.
    """
    wanted = sorted((model.profile(n) for n in profiles), key=lambda p: (-p.memory_slices, -p.compute, p.name))
    if sum(p.compute for p in wanted) + compute_used(model, existing) > model.compute_slices:
        return None
    counts = Counter(p.profile for p in existing) + Counter(p.name for p in wanted)
    if any(counts[p.name] > p.max_instances for p in wanted):
        return None

    def search(index: int, layout: list[Placed]) -> list[Placed] | None:
        if index == len(wanted):
            return layout
        profile = wanted[index]
        for start in free_starts(model, layout, profile):
            found = search(index + 1, [*layout, Placed(start, profile.name)])
            if found is not None:
                return found
        return None

    result = search(0, list(existing))
    return None if result is None else result[len(existing):]


def fits(model: GpuModel, profiles: Sequence[str]) -> bool:
    """True when all these profiles can coexist on one empty GPU of this model."""
    return find_layout(model, profiles) is not None
