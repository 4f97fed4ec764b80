"""Request resolution: what researchers typed → a `GpuRequest`, and a request × a GPU model → its
options (a fraction share, or the MIG profiles that would serve it, smallest first)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import UserError
from ..model import MILLI, MIN_GPU_MEMORY_BYTES, GpuRequest, RequestKind
from ..units import MiB, format_bytes, parse_size
from .catalog import Catalog, GpuModel, MigProfile, default_catalog


def request_from_flags(
    gpu: str | float | None = None,
    gpu_memory: str | None = None,
    mig_profile: str | None = None,
    catalog: Catalog | None = None,
) -> GpuRequest | None:
    """Validate `--gpu`, `--gpu-memory`, `--mig-profile` into a request (None: no GPU).

    Raises `UserError` for anything a researcher should retype.
    """
    given = [flag for flag, value in (("--gpu", gpu), ("--gpu-memory", gpu_memory), ("--mig-profile", mig_profile))
             if value is not None]
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} cannot be used together", "ask for GPUs in one way only")
    if gpu is not None:
        return _gpu_flag(gpu)
    if gpu_memory is not None:
        size = parse_size(gpu_memory)
        if size < MIN_GPU_MEMORY_BYTES:
            raise UserError(
                f"--gpu-memory {gpu_memory} is too small", f"ask for at least {format_bytes(MIN_GPU_MEMORY_BYTES)}"
            )
        return GpuRequest(memory_bytes=size)
    if mig_profile is not None:
        known = (catalog or default_catalog()).mig_profile_names()
        if mig_profile not in known:
            raise UserError(f"unknown MIG profile {mig_profile!r}", "valid profiles: " + ", ".join(known))
        return GpuRequest(mig_profile=mig_profile)
    return None


def _gpu_flag(raw: str | float) -> GpuRequest:
    hint = "--gpu takes a fraction between 0 and 1 (e.g. 0.25) or a whole number of GPUs (e.g. 2)"
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"invalid --gpu {raw!r}", hint) from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"invalid --gpu {raw!r}", hint)
    if value < 1:
        if round(value * MILLI) < 1:
            raise UserError(f"--gpu {raw} is too small", "the smallest fraction is 0.001")
        return GpuRequest(fraction=value)
    if value != int(value):
        raise UserError(f"invalid --gpu {raw!r}: above 1 it must be a whole number", hint)
    if value > 64:
        raise UserError(f"--gpu {raw} is more GPUs than any node has", hint)
    return GpuRequest(gpus=int(value))


@dataclass(frozen=True)
class RequestOptions:
    """How one GPU model could serve a request."""

    share_milli: int | None  # a fraction of a non-MIG GPU of this model, or None if none fits
    memory_mib: int | None  # the memory limit that goes with that share
    mig_profiles: tuple[MigProfile, ...]  # candidate profiles on a dynamic-MIG GPU, smallest first


def share_for_memory(memory_bytes: int, gpu_memory_mib: int) -> int | None:
    """Thousandths of a GPU needed to hold `memory_bytes`; None when it exceeds the GPU."""
    milli = -(-memory_bytes * MILLI // (gpu_memory_mib * MiB))
    return milli if milli <= MILLI else None


def mig_candidates(request: GpuRequest, model: GpuModel) -> tuple[MigProfile, ...]:
    """Profiles that serve the request, smallest first (fewest memory slices, then compute)."""
    if not model.mig_capable:
        return ()
    if request.kind == RequestKind.MIG:
        return tuple(p for p in model.profiles if p.name == request.mig_profile)
    if request.kind == RequestKind.MEMORY:
        assert request.memory_bytes is not None
        fitting = [p for p in model.profiles if p.memory_mib * MiB >= request.memory_bytes and is_plain_profile(p)]
        return tuple(sorted(fitting, key=lambda p: p.sort_key))
    return ()


def is_plain_profile(profile: MigProfile) -> bool:
    """`+me` and other variant profiles are given only to those who ask for them by name."""
    return "+" not in profile.name and "-me" not in profile.name


def options_for(request: GpuRequest, model: GpuModel) -> RequestOptions:
    share = memory = None
    if request.kind == RequestKind.FRACTION:
        share = request.fraction_milli
        memory = model.memory_mib * share // MILLI
    elif request.kind == RequestKind.MEMORY:
        assert request.memory_bytes is not None
        share = share_for_memory(request.memory_bytes, model.memory_mib)
        memory = -(-request.memory_bytes // MiB) if share is not None else None
    return RequestOptions(share_milli=share, memory_mib=memory, mig_profiles=mig_candidates(request, model))
