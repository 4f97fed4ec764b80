"""Declared GPU inventories for the simulated driver: `MODEL:COUNT[:mig-on|:mig-off][,MODEL:COUNT...]`.

`A100-SXM4-40GB:1` is one simulated A100; `H100-SXM5-80GB:2,T4:4` is two H100s and four T4s. A
MIG-capable GPU's MIG mode is one of three settings:

- `on-demand` (no suffix): off, as a GPU comes from the factory, so it runs fractions and whole
  GPUs; switched on when its node is made dynamic-MIG and off again when that role is removed,
  as an administrator would with `nvidia-smi -mig 1|0`;
- `on` (`:mig-on`): MIG mode on from the start (a GPU an administrator partitioned by hand);
- `off` (`:mig-off`): off, and runai-lite may not switch it (like a real GPU, where the switch
  needs a GPU reset): for trying the refusals that depend on it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UserError
from .catalog import Catalog, GpuModel, default_catalog

MAX_GPUS = 1024  # a simulated inventory larger than this is a typo, not a machine
_COUNT = re.compile(r"^[0-9]{1,4}$")  # at most 4 digits: never int() of a huge string
ON_DEMAND, ON, OFF = "on-demand", "on", "off"
_MIG_FLAGS = {"mig-off": OFF, "mig-on": ON}
EXAMPLE = "A100-SXM4-40GB:1 or H100-SXM5-80GB:2,T4:4 (add :mig-on or :mig-off to fix a GPU's MIG mode)"


@dataclass(frozen=True, slots=True)
class InventoryItem:
    """`count` GPUs of one model, all with the same MIG setting (`ON_DEMAND`, `ON` or `OFF`; `OFF`
    for a model without MIG)."""

    model: GpuModel
    count: int
    mig: str

    def spec(self) -> str:
        text = f"{self.model.name}:{self.count}"
        return text if self.mig == ON_DEMAND or not self.model.mig_capable else f"{text}:mig-{self.mig}"


@dataclass(frozen=True, slots=True)
class DeclaredGpu:
    """One GPU of a declared inventory, by its index on the (simulated) machine."""

    index: int
    model: GpuModel
    mig: str  # ON_DEMAND, ON or OFF

    @property
    def mig_enabled(self) -> bool:
        """MIG mode when declared: on only when `:mig-on` says so."""
        return self.mig == ON


@dataclass(frozen=True, slots=True)
class Inventory:
    items: tuple[InventoryItem, ...]

    def spec(self) -> str:
        """The canonical text of this inventory (catalog model names), which parses back to it."""
        return ",".join(item.spec() for item in self.items)

    def gpus(self) -> list[DeclaredGpu]:
        """Every GPU, indexed in declaration order."""
        declared: list[DeclaredGpu] = []
        for item in self.items:
            for _ in range(item.count):
                declared.append(DeclaredGpu(len(declared), item.model, item.mig))
        return declared


def parse_inventory(text: str, catalog: Catalog | None = None) -> Inventory:
    """Parse `MODEL:COUNT[:mig-on|:mig-off][,...]`; a `UserError` saying what is wrong otherwise."""
    catalog = catalog or default_catalog()
    if not text or not text.strip():
        raise UserError("the simulated GPU inventory is empty", f"declare one, e.g. {EXAMPLE}")
    items = [_parse_item(part.strip(), catalog) for part in text.split(",")]
    total = sum(item.count for item in items)
    if total > MAX_GPUS:
        raise UserError(f"the simulated inventory declares {total} GPUs (at most {MAX_GPUS})", f"e.g. {EXAMPLE}")
    return Inventory(tuple(items))


def _parse_item(part: str, catalog: Catalog) -> InventoryItem:
    fields = [f.strip() for f in part.split(":")]
    if not part or len(fields) not in (2, 3) or not fields[0]:
        raise UserError(f"cannot read {part!r} in the simulated GPU inventory", f"write MODEL:COUNT, e.g. {EXAMPLE}")
    model = catalog.find(fields[0])
    if model is None:
        raise UserError(
            f"unknown GPU model {fields[0]!r} in the simulated inventory",
            "known models: " + ", ".join(m.name for m in catalog.models),
        )
    if not _COUNT.match(fields[1]) or not 1 <= int(fields[1]) <= MAX_GPUS:
        raise UserError(
            f"the GPU count in {part!r} must be a whole number from 1 to {MAX_GPUS}", f"e.g. {model.name}:1"
        )
    mig = ON_DEMAND if model.mig_capable else OFF
    if len(fields) == 3:
        flag = fields[2].lower()
        if flag not in _MIG_FLAGS:
            raise UserError(f"unknown option {fields[2]!r} in {part!r}", f"the option can be mig-off or mig-on, e.g. {model.name}:1:mig-off")
        if not model.mig_capable:
            raise UserError(f"{model.name} does not support MIG, so {fields[2]!r} does not apply", f"write {model.name}:{fields[1]}")
        mig = _MIG_FLAGS[flag]
    return InventoryItem(model, int(fields[1]), mig)
