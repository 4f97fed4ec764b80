"""MIG choices computed once per GPU layout.

GPUs with the same layout signature (model, and each instance's place and use) offer the same
places for a profile, so `mig_choice.targets` runs once per signature and profile, and the best
place among ranked profiles once per signature and ranking. Keyed by signature, never by GPU, so
the caches stay right as the plan changes layouts.
"""

from __future__ import annotations

from typing import NamedTuple

from ..gpu.catalog import MigProfile
from ..gpu.mig_layout import free_runs
from ..gpu.requests import mig_candidates
from ..model import GpuRequest
from .mig_choice import MigTarget, targets
from .state import GpuState, Instance


class MigPlace(NamedTuple):
    """A place for a profile without victims, as every GPU of one layout signature offers it."""

    start: int
    reuse: int | None  # start of the idle instance of the profile taken over
    destroy: tuple[tuple[int, str], ...]  # idle instances destroyed first, as `where` gives them
    fragmentation: tuple[int, int, int]
    packing: tuple[int, int, int, int]


class BestMigPlace(NamedTuple):
    """The best place on a GPU among ranked profiles. `key` is what `allocate` compares across GPUs;
    `undisturbed` says whether some place on this GPU needs no instance destroyed."""

    key: tuple
    profile: MigProfile
    target: MigTarget
    undisturbed: bool


class MigChoices:
    """The per-signature caches of a scheduling session (or of several: `carried.py` keeps them,
    as nothing in them depends on more than a signature)."""

    def __init__(self) -> None:
        self._places: dict[tuple, list[MigPlace]] = {}
        self._best: dict[tuple, tuple[tuple, MigProfile, MigPlace, bool] | None] = {}
        self._runs: dict[tuple, int] = {}
        self._candidates: dict[tuple, tuple[MigProfile, ...]] = {}

    def __len__(self) -> int:
        return len(self._places) + len(self._best) + len(self._runs) + len(self._candidates)

    def candidates(self, request: GpuRequest, gpu: GpuState) -> tuple[MigProfile, ...]:
        """The profiles that serve `request` on the GPU's model, smallest first."""
        assert gpu.model is not None
        key = (request, gpu.model_name)
        found = self._candidates.get(key)
        if found is None:
            found = self._candidates[key] = mig_candidates(request, gpu.model)
        return found

    def places(self, gpu: GpuState, profile: MigProfile) -> list[MigPlace]:
        """`mig_choice.targets` without victims, computed once per layout signature and profile."""
        key = (gpu.signature(), profile.name)
        found = self._places.get(key)
        if found is None:
            found = [MigPlace(t.start, t.reuse.start if t.reuse else None, tuple(where(i) for i in t.destroy),
                              t.fragmentation, t.packing) for t in targets(gpu, profile, destroy_idle=True)]
            self._places[key] = found
        return found

    def best(self, gpu: GpuState, ranked: tuple[tuple[int, MigProfile], ...]) -> BestMigPlace | None:
        """The best place on `gpu` among `ranked` (rank, profile) pairs, without victims."""
        cache_key = (gpu.signature(), ranked)
        if cache_key not in self._best:
            best: tuple[tuple, MigProfile, MigPlace] | None = None
            undisturbed = False
            for rank, profile in ranked:
                for place in self.places(gpu, profile):
                    undisturbed = undisturbed or not place.destroy
                    # Idle slices count as nearly free: destroying idle instances only breaks ties
                    # after packing, so work does not scatter onto empty GPUs (allocate's docstring).
                    key = (rank, place.reuse is None, *place.packing, len(place.destroy),
                           tuple(-x for x in place.fragmentation))
                    if best is None or (key, place.start) < (best[0], best[2].start):
                        best = (key, profile, place)
            self._best[cache_key] = None if best is None else (*best, undisturbed)
        found = self._best[cache_key]
        if found is None:
            return None
        key, profile, place, undisturbed = found
        target = MigTarget(profile, place.start, None if place.reuse is None else gpu.instance_at(place.reuse),
                           tuple(i for i in gpu.instances if where(i) in place.destroy), (), (), place.fragmentation)
        return BestMigPlace(key, profile, target, undisturbed)

    def largest_free_run(self, gpu: GpuState) -> int:
        """The longest run of free memory slices on the GPU."""
        key = gpu.signature()
        if key not in self._runs:
            assert gpu.model is not None
            self._runs[key] = max(free_runs(gpu.model, gpu.layout()), default=0)
        return self._runs[key]


def where(inst: Instance) -> tuple[int, str]:
    """An instance as GPUs of one layout signature share it (even an inconsistent layout with two
    instances at one start)."""
    return inst.start, inst.profile.name
