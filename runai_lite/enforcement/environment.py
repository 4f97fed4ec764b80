"""The environment a job starts with so that its GPU memory limit holds.

Pure: `job_environment` turns a mechanism and a limit into a `JobEnforcement` (variables, preloads,
what it means); `JobEnforcement.apply` merges that into the job's own environment. Both backends
use it: the embedded runner for the process it starts, the Kubernetes controller for the per-pod
ConfigMap (there `hook_dir` and `hami_core_library` are paths inside the container, and
`hook_dir=None` when the hook is not mounted there).

The framework hook is always added on top of hami-core and mps: it gives PyTorch and JAX the limit
as well, so their allocators stop before the CUDA-level limit, and a job that runs out of memory
gets a message that names its limit.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ..model import MILLI, Allocation, AllocationKind
from .mechanisms import Mechanism
from .probe import DEFAULT_HAMI_CORE_PATH

HOOK_DIR = Path(__file__).parent / "hook"

# Read by hook/sitecustomize.py (which cannot import runai_lite: the job's Python may not have it).
HOOK_LIMIT_VAR = "RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"
HOOK_FRACTION_VAR = "RUNAI_LITE_GPU_MEMORY_FRACTION"
HOOK_ENFORCEMENT_VAR = "RUNAI_LITE_ENFORCEMENT"
# Run:ai sets these on fraction pods (e.g. "0.50"); programs written for Run:ai read them.
RUNAI_LIMIT_VAR = "RUNAI_GPU_MEMORY_LIMIT"
RUNAI_REQUEST_VAR = "RUNAI_GPU_MEMORY_REQUEST"
JAX_FRACTION_VAR = "XLA_PYTHON_CLIENT_MEM_FRACTION"

HAMI_MEMORY_VAR = "CUDA_DEVICE_MEMORY_LIMIT"
HAMI_SM_VAR = "CUDA_DEVICE_SM_LIMIT"
HAMI_CACHE_VAR = "CUDA_DEVICE_MEMORY_SHARED_CACHE"
MPS_MEMORY_VAR = "CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"
MPS_THREADS_VAR = "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"
MPS_PIPE_VAR = "CUDA_MPS_PIPE_DIRECTORY"

# Variables a job may not set for itself because they would switch its enforcement off
# (HAMi skips injecting libvgpu.so for pods that set CUDA_DISABLE_CONTROL).
_ESCAPES = ("CUDA_DISABLE_CONTROL",)


@dataclass(frozen=True)
class _CudaLayer:
    """A mechanism that holds the limit below the framework, driven by environment variables."""

    memory_var: str
    memory_value: str  # format of the limit, {mib} in MiB
    compute_var: str  # a percentage, set only when a compute share is asked for
    location_var: str  # where the job finds the mechanism's state
    summary: str


_CUDA_LAYERS = {
    Mechanism.HAMI_CORE: _CudaLayer(
        HAMI_MEMORY_VAR, "{mib}m", HAMI_SM_VAR, HAMI_CACHE_VAR,
        "hami-core: libvgpu.so fails CUDA allocations beyond {mib} MiB"),
    # Device 0 is the job's own GPU: a fraction job sees exactly one.
    Mechanism.MPS: _CudaLayer(
        MPS_MEMORY_VAR, "0={mib}M", MPS_THREADS_VAR, MPS_PIPE_VAR,
        "mps: the MPS server refuses device memory beyond {mib} MiB"),
}


class JobEnforcement(BaseModel):
    """How one job's GPU memory limit is held.

    `mechanism` is the strongest layer (what `runai describe job` shows), `layers` every layer in
    force (hami-core or mps, then framework), `limit_mib` the limit per GPU, `advisory` True when
    nothing enforces it.
    """

    model_config = ConfigDict(frozen=True)

    mechanism: Mechanism
    layers: tuple[Mechanism, ...]
    env: dict[str, str]
    ld_preload: tuple[str, ...] = ()
    limit_mib: int
    advisory: bool
    description: str

    @property
    def label(self) -> str:
        """All layers, e.g. `hami-core+framework`."""
        return "+".join(layer.value for layer in self.layers)

    def apply(self, base: Mapping[str, str]) -> dict[str, str]:
        """The job's environment `base` with this enforcement in force: its variables win over the
        job's own, `PYTHONPATH` and `LD_PRELOAD` are prepended to what the job already has, and
        variables that would switch enforcement off are dropped. Applying it to its own result
        changes nothing."""
        merged = {k: v for k, v in base.items() if k not in _ESCAPES or self.advisory}
        for key, value in self.env.items():
            merged[key] = _prepend(value, base.get(key), os.pathsep) if key == "PYTHONPATH" else value
        if self.ld_preload:
            # ld.so reads LD_PRELOAD as a list separated by colons or spaces.
            merged["LD_PRELOAD"] = _prepend(":".join(self.ld_preload), base.get("LD_PRELOAD"), ":")
        return merged


def _prepend(first: str, rest: str | None, separator: str) -> str:
    """`first` in front of the list `rest`, once: applying an enforcement twice changes nothing."""
    if not rest:
        return first
    kept = [entry for entry in rest.split(separator) if entry not in first.split(separator)]
    return separator.join([first, *kept]) if kept else first


def job_environment(
    mechanism: Mechanism | str,
    *,
    memory_limit_mib: int,
    share_milli: int,
    compute_share: bool = False,
    hami_core_library: str = DEFAULT_HAMI_CORE_PATH,
    hami_shared_cache: str | None = None,
    mps_pipe_directory: str | None = None,
    hook_dir: str | os.PathLike[str] | None = HOOK_DIR,
) -> JobEnforcement:
    """What a fraction job on one GPU needs so that its memory limit holds.

    - `memory_limit_mib`: the job's limit on its GPU; `share_milli`: its share of that GPU in
      thousandths (limit / GPU memory), used for the fraction-based variables.
    - `compute_share`: the job asked for a compute share too; only then are SM limits set
      (jobs on one GPU otherwise share its compute evenly, as in Run:ai).
    - `hami_core_library`: where libvgpu.so is (as the job sees it).
    - `hami_shared_cache`: HAMi-core's accounting file; give each job its own (say, in its state
      directory) when jobs share a filesystem, since by default every process on the machine
      would share `/tmp/cudevshr.cache` and be counted together.
    - `mps_pipe_directory`: the MPS daemon's pipe directory, passed on when not the default.
    - `hook_dir`: the directory holding the framework hook's `sitecustomize.py` (as the job sees it).
      None when the hook cannot be where the job runs (a container image runai-lite does not
      control): then no `PYTHONPATH` is set, which would replace the image's own, and the framework
      layer is left out; JAX still gets its fraction, a variable it reads by itself.

    `none` yields no variables at all and `advisory=True`.
    """
    mechanism = Mechanism(mechanism)
    if mechanism is Mechanism.MIG:
        raise ValueError("a MIG partition needs no job environment; use for_allocation")
    if memory_limit_mib < 1:
        raise ValueError(f"memory_limit_mib must be at least 1, not {memory_limit_mib}")
    if not 1 <= share_milli <= MILLI:
        raise ValueError(f"share_milli must be within 1..{MILLI}, not {share_milli}")
    if mechanism is Mechanism.FRAMEWORK and hook_dir is None:
        raise ValueError("the framework mechanism needs the hook's directory (hook_dir)")

    if mechanism is Mechanism.NONE:
        return JobEnforcement(
            mechanism=mechanism, layers=(mechanism,), env={}, limit_mib=memory_limit_mib, advisory=True,
            description=f"none: the {memory_limit_mib} MiB limit is advisory; nothing stops the job from using "
            "more of the GPU",
        )

    env: dict[str, str] = {}
    layer = _CUDA_LAYERS.get(mechanism)
    if layer is not None:
        env[layer.memory_var] = layer.memory_value.format(mib=memory_limit_mib)
        if compute_share:
            env[layer.compute_var] = str(max(1, round(share_milli * 100 / MILLI)))
        location = hami_shared_cache if mechanism is Mechanism.HAMI_CORE else mps_pipe_directory
        if location:
            env[layer.location_var] = location
    ld_preload = (hami_core_library,) if mechanism is Mechanism.HAMI_CORE else ()
    strongest = layer.summary.format(mib=memory_limit_mib) if layer is not None else ""

    env.update(_framework_variables(mechanism, memory_limit_mib, share_milli, hook_dir))
    if hook_dir is None:
        framework = "JAX gets its share through XLA_PYTHON_CLIENT_MEM_FRACTION (no PyTorch hook)"
        layers: tuple[Mechanism, ...] = (mechanism,)
    else:
        framework = f"the framework hook caps PyTorch/JAX at {memory_limit_mib} MiB"
        layers = (mechanism,) if mechanism is Mechanism.FRAMEWORK else (mechanism, Mechanism.FRAMEWORK)
    return JobEnforcement(
        mechanism=mechanism, layers=layers, env=env, ld_preload=ld_preload, limit_mib=memory_limit_mib,
        advisory=False,
        description=f"{strongest}; {framework}" if strongest else f"framework: {framework} (Python jobs only)",
    )


def _framework_variables(
    mechanism: Mechanism, memory_limit_mib: int, share_milli: int, hook_dir: str | os.PathLike[str] | None
) -> dict[str, str]:
    fraction = f"{share_milli / MILLI:.3f}"
    variables = {
        HOOK_LIMIT_VAR: str(memory_limit_mib),
        HOOK_FRACTION_VAR: fraction,
        HOOK_ENFORCEMENT_VAR: mechanism.value,
        RUNAI_LIMIT_VAR: fraction,
        RUNAI_REQUEST_VAR: fraction,
    }
    # Under HAMi-core JAX already sees the limit as the device's total memory, so a fraction on top
    # would shrink the job's share twice; elsewhere JAX sees the whole GPU.
    if mechanism is not Mechanism.HAMI_CORE:
        variables[JAX_FRACTION_VAR] = fraction
    if hook_dir is not None:
        variables["PYTHONPATH"] = os.fspath(hook_dir)
    return variables


def for_allocation(
    allocation: Allocation,
    mechanism: Mechanism | str,
    *,
    gpu_memory_mib: int | None = None,
    compute_share: bool = False,
    hami_core_library: str = DEFAULT_HAMI_CORE_PATH,
    hami_shared_cache: str | None = None,
    mps_pipe_directory: str | None = None,
    hook_dir: str | os.PathLike[str] | None = HOOK_DIR,
) -> JobEnforcement | None:
    """The enforcement for a bound job, whatever it got: a fraction gets the node's `mechanism`
    (its limit is `allocation.memory_mib`, or its share of `gpu_memory_mib`); a MIG partition is
    held by the hardware (mechanism `mig`, no variables); whole GPUs need no limit (None)."""
    if allocation.kind == AllocationKind.GPU:
        return None
    if allocation.kind == AllocationKind.MIG:
        if allocation.memory_mib is None:
            raise ValueError("a MIG allocation must carry its instance's memory_mib")
        return JobEnforcement(
            mechanism=Mechanism.MIG, layers=(Mechanism.MIG,), env={}, limit_mib=allocation.memory_mib,
            advisory=False,
            description=f"mig: the {allocation.mig_profile} partition holds {allocation.memory_mib} MiB in hardware",
        )
    limit = allocation.memory_mib
    if limit is None:
        if gpu_memory_mib is None:
            raise ValueError("a fraction allocation without memory_mib needs gpu_memory_mib")
        limit = gpu_memory_mib * allocation.share_milli // MILLI
    return job_environment(
        mechanism, memory_limit_mib=limit, share_milli=allocation.share_milli, compute_share=compute_share,
        hami_core_library=hami_core_library, hami_shared_cache=hami_shared_cache,
        mps_pipe_directory=mps_pipe_directory, hook_dir=hook_dir,
    )


def hook_files() -> dict[str, str]:
    """The framework hook's files by name, for shipping them where the package is not installed
    (a ConfigMap mounted into a container, whose mount path is then `hook_dir`)."""
    return {path.name: path.read_text() for path in sorted(HOOK_DIR.glob("*.py"))}
