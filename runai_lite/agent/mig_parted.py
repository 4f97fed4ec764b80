"""MIG layouts in the config format of NVIDIA's mig-parted (what the GPU Operator's MIG manager
applies from its `default-mig-parted-config` ConfigMap). Pure: no I/O.

    version: v1
    mig-configs:
      runai-lite:
        - devices: [0]
          mig-enabled: true
          mig-devices: {"1g.10gb": 2, "2g.10gb": 1}
        - devices: [1]
          mig-enabled: false

`export_config` writes a machine's layout (per GPU, the profiles of its instances) that way, GPUs
with the same instances in one entry; `read_config` reads one named config back into placements
per GPU. mig-parted's format names how many instances of each profile, not where: reading places
them with the layout algebra (`gpu.mig_layout.find_layout`: largest profiles first, each at its
lowest free start), and refuses a config whose instances do not fit a GPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import UserError
from ..gpu.catalog import GpuModel
from ..gpu.mig_layout import Placed, find_layout

VERSION = "v1"


class MigPartedError(UserError):
    """A mig-parted config that cannot be read as a layout of these GPUs."""


def export_config(name: str, gpus: Mapping[int, Iterable[str] | None]) -> dict[str, Any]:
    """The mig-parted config `name` holding each GPU's instances (`None`: MIG mode off)."""
    groups: dict[tuple[bool, tuple[tuple[str, int], ...]], list[int]] = {}
    for index in sorted(gpus):
        profiles = gpus[index]
        key = (False, ()) if profiles is None else (True, tuple(sorted(Counter(profiles).items())))
        groups.setdefault(key, []).append(index)
    entries: list[dict[str, Any]] = []
    for (enabled, counts), devices in sorted(groups.items(), key=lambda item: item[1][0]):
        entry: dict[str, Any] = {"devices": devices, "mig-enabled": enabled}
        if enabled:
            entry["mig-devices"] = dict(counts)
        entries.append(entry)
    return {"version": VERSION, "mig-configs": {name: entries}}


def read_config(document: Mapping[str, Any], name: str, models: Mapping[int, GpuModel]) -> dict[int, list[Placed] | None]:
    """Config `name` of a mig-parted document as placements per GPU of `models` (by index); None for
    a GPU the config puts in MIG mode off. GPUs the config does not name are left out."""
    if document.get("version") != VERSION:
        raise MigPartedError(f"mig-parted config version {document.get('version')!r} is not supported",
                             f"use `version: {VERSION}`")
    configs = document.get("mig-configs")
    if not isinstance(configs, Mapping) or name not in configs:
        known = ", ".join(sorted(configs)) if isinstance(configs, Mapping) else "none"
        raise MigPartedError(f"no mig-parted config named {name!r}", f"configs in the file: {known}")
    entries = configs[name]
    if not isinstance(entries, list):
        raise MigPartedError(f"mig-configs.{name} must be a list of entries with devices, mig-enabled, mig-devices")
    layouts: dict[int, list[Placed] | None] = {}
    for number, entry in enumerate(entries):
        where = f"mig-configs.{name}[{number}]"
        if not isinstance(entry, Mapping):
            raise MigPartedError(f"{where} must be a mapping")
        unknown = set(entry) - {"devices", "mig-enabled", "mig-devices"}
        if unknown:
            raise MigPartedError(f"{where}: {', '.join(sorted(unknown))} is not supported",
                                 "name GPUs by index in devices (or `all`)")
        for index in _devices(entry.get("devices"), models, where):
            if index in layouts:
                raise MigPartedError(f"{where}: GPU {index} is named by two entries")
            layouts[index] = _layout(entry, models[index], index, where)
    return layouts


def _devices(devices: Any, models: Mapping[int, GpuModel], where: str) -> list[int]:
    if devices == "all":
        return sorted(models)
    if not isinstance(devices, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in devices):
        raise MigPartedError(f"{where}: devices must be `all` or a list of GPU indices, not {devices!r}")
    missing = [d for d in devices if d not in models]
    if missing:
        raise MigPartedError(f"{where}: no GPU {', '.join(map(str, missing))} here",
                             f"GPUs: {', '.join(map(str, sorted(models)))}")
    return list(devices)


def _layout(entry: Mapping[str, Any], model: GpuModel, index: int, where: str) -> list[Placed] | None:
    enabled = entry.get("mig-enabled")
    if not isinstance(enabled, bool):
        raise MigPartedError(f"{where}: mig-enabled must be true or false")
    counts = entry.get("mig-devices") or {}
    if not enabled:
        if counts:
            raise MigPartedError(f"{where}: mig-devices given with mig-enabled: false")
        return None
    if not isinstance(counts, Mapping) or not all(isinstance(c, int) and c >= 0 for c in counts.values()):
        raise MigPartedError(f"{where}: mig-devices must map profiles to counts, e.g. {{\"1g.10gb\": 2}}")
    for profile in counts:
        model.profile(profile)  # a UserError naming the model's profiles
    profiles = [profile for profile, count in counts.items() for _ in range(count)]
    placed = find_layout(model, profiles)
    if placed is None:
        raise MigPartedError(f"{where}: {', '.join(f'{c}x {p}' for p, c in counts.items())} do not fit GPU {index} "
                             f"({model.name}) at once")
    return sorted(placed)
