"""The GPU and MIG catalog, shipped as data (`data/catalog.yaml`) and looked up by NVML name.

Values NVML reports at run time take precedence: a driver builds a `GpuModel` from NVML and only
falls back to these tables where NVML cannot answer (simulated GPUs, tests, a cluster view).
"""

from __future__ import annotations

import re
from fractions import Fraction
from functools import cache, lru_cache
from importlib import resources

from pydantic import BaseModel, ConfigDict, Field

from ..errors import UserError


class MigProfile(BaseModel):
    """One GPU-instance profile: `3g.20gb` = 3 compute slices, 4 memory slices, 19968 MiB."""

    model_config = ConfigDict(frozen=True)

    name: str
    id: int = Field(description="NVML profile ID (info.id), family-specific")
    compute: int = Field(ge=1, description="compute (SM) slices")
    memory_slices: int = Field(ge=1)
    memory_mib: int = Field(ge=1)
    max_instances: int = Field(ge=1)
    starts: tuple[int, ...] = Field(description="allowed placement starts, in memory slices")
    estimated: bool = False

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Smallest first: fewest memory slices, then fewest compute slices (DESIGN §4)."""
        return (self.memory_slices, self.compute, self.name)


class GpuModel(BaseModel):
    """A GPU board: its memory and, when MIG-capable, its slice counts and profiles."""

    model_config = ConfigDict(frozen=True)

    name: str
    aliases: tuple[str, ...] = ()
    memory_mib: int = Field(ge=1)
    compute_slices: int = 0
    memory_slices: int = 0
    profiles: tuple[MigProfile, ...] = ()
    pci_device_ids: tuple[int, ...] = ()
    verified: bool = True

    @property
    def mig_capable(self) -> bool:
        return bool(self.profiles)

    def find_profile(self, name: str) -> MigProfile | None:
        """The profile called `name`, or None (a name NVML or a layout reported, not a user's)."""
        for profile in self.profiles:
            if profile.name == name:
                return profile
        return None

    def profile(self, name: str) -> MigProfile:
        """The profile called `name` as a user asked for it; a `UserError` listing the valid ones otherwise."""
        found = self.find_profile(name)
        if found is not None:
            return found
        if not self.profiles:
            raise UserError(f"{self.name} does not support MIG", "use --gpu or --gpu-memory on this GPU")
        raise UserError(
            f"unknown MIG profile {name!r} for {self.name}",
            "valid profiles: " + ", ".join(p.name for p in self.profiles_smallest_first()),
        )

    def compute_share(self, profile: MigProfile) -> Fraction:
        """The share of this GPU an instance of `profile` counts as: its compute slices of all."""
        return Fraction(profile.compute, self.compute_slices)

    def profiles_smallest_first(self) -> list[MigProfile]:
        return sorted(self.profiles, key=lambda p: p.sort_key)


@lru_cache(maxsize=1024)
def _normalise(name: str) -> str:
    name = name.strip()
    name = re.sub(r"^(NVIDIA|Tesla)\s+", "", name, flags=re.IGNORECASE)
    return re.sub(r"[\s_-]+", "-", name).upper()


class Catalog:
    """All known GPU models, indexed by every name they go by."""

    def __init__(self, models: list[GpuModel]):
        self.models = models
        self._by_name: dict[str, GpuModel] = {}
        for model in models:
            for name in (model.name, *model.aliases):
                self._by_name[_normalise(name)] = model

    def find(self, name: str) -> GpuModel | None:
        return self._by_name.get(_normalise(name))

    def get(self, name: str) -> GpuModel:
        model = self.find(name)
        if model is None:
            raise UserError(
                f"unknown GPU model {name!r}",
                "known models: " + ", ".join(m.name for m in self.models),
            )
        return model

    def mig_profile_names(self) -> list[str]:
        """Every profile name of every MIG model, for validating `--mig-profile` before placement."""
        names = {p.name for m in self.models for p in m.profiles}
        return sorted(names, key=_profile_name_key)


def _profile_name_key(name: str) -> tuple[int, float, str]:
    match = re.match(r"(\d+)g\.(\d+)gb", name)
    if not match:
        return (99, 0.0, name)
    return (int(match[1]), float(match[2]), name)


def _load(text: str) -> list[GpuModel]:
    import yaml  # only when the catalog is read: `runai submit --gpu 1` never needs it

    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)
    models = []
    for raw in data["mig_models"]:
        models.append(GpuModel(**{**raw, "profiles": tuple(MigProfile(**p) for p in raw["profiles"])}))
    for raw in data["plain_models"]:
        models.append(GpuModel(**raw))
    return models


@cache
def default_catalog() -> Catalog:
    text = resources.files("runai_lite.gpu").joinpath("data/catalog.yaml").read_text()
    return Catalog(_load(text))


MIG_PROFILE_PATTERN = re.compile(r"^\d+g\.\d+gb(\+me(\.all)?|-me|\+gfx)?$")
