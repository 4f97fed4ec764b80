"""Whether a GPU request could ever be held by the GPUs there are, whatever else runs.

Pure: given each node's GPUs (model name and memory), say why no node could ever hold the
request, naming the largest it could hold, or None when some node could (perhaps after its
MIG mode or its jobs change). The embedded mode refuses such a request at submit; Kubernetes,
whose nodes come and go, accepts it with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..model import GpuRequest, RequestKind
from ..units import MiB, format_bytes, format_mib, format_size_as_typed
from .catalog import Catalog, default_catalog


NEVER_FITS_EVENT = "NeverFits"  # the kind of the event a backend that accepts such a request records


@dataclass(frozen=True, slots=True)
class NeverFits:
    """What is wrong with the request, and what the largest request that fits would be."""

    message: str
    hint: str


def never_fits(request: GpuRequest | None, nodes: Mapping[str, Sequence[tuple[str, int]]],
               catalog: Catalog | None = None) -> NeverFits | None:
    """`nodes`: node name -> its GPUs as (model name, memory in MiB)."""
    if request is None:
        return None
    gpus = [(node, model, memory) for node, held in nodes.items() for model, memory in held]
    if not gpus:
        return NeverFits("no node here has a GPU", "leave out --gpu, --gpu-memory and --mig-profile to run on CPUs")
    kind = request.kind
    if kind == RequestKind.GPUS:
        return _whole(request.gpus or 1, nodes)
    if kind == RequestKind.MEMORY:
        return _memory(request.memory_bytes or 0, gpus)
    if kind == RequestKind.MIG:
        return _mig(request.mig_profile or "", gpus, catalog or default_catalog())
    return None  # a fraction fits on any GPU


def _whole(count: int, nodes: Mapping[str, Sequence[tuple[str, int]]]) -> NeverFits | None:
    most = max(nodes, key=lambda n: (len(nodes[n]), n))
    held = len(nodes[most])
    if held >= count:
        return None
    where = f"{most} has {held}" if len(nodes) == 1 else f"the most on one node is {held} ({most})"
    return NeverFits(f"--gpu {count} asks for more GPUs than any node has: {where}",
                     f"ask for --gpu {held} or fewer")


def _memory(wanted: int, gpus: list[tuple[str, str, int]]) -> NeverFits | None:
    node, model, memory = max(gpus, key=lambda g: (g[2], g[0], g[1]))
    if memory * MiB >= wanted:
        return None
    return NeverFits(f"--gpu-memory {format_size_as_typed(wanted)} is more than any GPU here holds: the largest, "
                     f"{model} on {node}, has {format_bytes(memory * MiB)} ({format_mib(memory)})",
                     f"ask for --gpu-memory {format_mib(memory)} or less, or --gpu 1 for the whole GPU")


def _mig(profile: str, gpus: list[tuple[str, str, int]], catalog: Catalog) -> NeverFits | None:
    models = {catalog.find(model) for _, model, _ in gpus} - {None}
    capable = sorted((m for m in models if m is not None and m.mig_capable), key=lambda m: m.name)
    if any(m.find_profile(profile) for m in capable):
        return None
    if not capable:
        names = ", ".join(sorted({model for _, model, _ in gpus}))
        return NeverFits(f"--mig-profile {profile}: no GPU here supports MIG ({names})",
                         "ask for --gpu-memory SIZE or --gpu FRACTION instead: a share of a GPU")
    offered = "; ".join(f"{m.name}: {', '.join(p.name for p in m.profiles_smallest_first())}" for m in capable)
    largest = max((p for m in capable for p in m.profiles), key=lambda p: (p.memory_mib, p.compute))
    return NeverFits(f"no GPU here offers MIG profile {profile} (the largest here is {largest.name})",
                     f"profiles of the GPUs here: {offered}")
