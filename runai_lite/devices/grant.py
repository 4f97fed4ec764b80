"""`grant`: the environment, devices and mounts one allocation gives a job. Pure."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..enforcement import DEFAULT_MPS_PIPE_DIRECTORY, JobEnforcement, Mechanism
from ..enforcement.environment import (
    HOOK_ENFORCEMENT_VAR,
    HOOK_LIMIT_VAR,
    MPS_PIPE_VAR,
    RUNAI_LIMIT_VAR,
    RUNAI_REQUEST_VAR,
)
from ..model import MILLI, Allocation, AllocationKind

VISIBLE_DEVICES = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
NUM_OF_GPUS_VAR = "RUNAI_NUM_OF_GPUS"
PORTION_VAR = "GPU_PORTION"
MIG_PROFILE_VAR = "RUNAI_LITE_MIG_PROFILE"
NO_DEVICE = "void"  # NVIDIA's container runtime: no GPU at all, even in an image that asks for all


@dataclass(frozen=True)
class Mount:
    """A host path a job needs inside its container."""

    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class DeviceGrant:
    """What a job is given: its device variables, the memory enforcement of a fraction, the device
    UUIDs (GPU or MIG instance) it may use, the host paths its enforcement needs, and whether it
    must share the host's IPC namespace (an MPS client)."""

    variables: dict[str, str]
    enforcement: JobEnforcement | None = None
    devices: tuple[str, ...] = ()
    mounts: tuple[Mount, ...] = ()
    host_ipc: bool = False
    whole_gpus: bool = field(default=False, repr=False)  # devices a Kubernetes device plugin can hand out

    @property
    def env(self) -> dict[str, str]:
        """The job's device environment, enforcement included."""
        return self.environment({})

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` (the job's own variables) with the grant's winning; the enforcement prepends its
        `PYTHONPATH` / `LD_PRELOAD` to the job's own rather than replacing them."""
        merged = {**base, **self.variables}
        return self.enforcement.apply(merged) if self.enforcement is not None else merged


def grant(allocation: Allocation | None, device_uuids: tuple[str, ...] | list[str] = (), *,
          enforcement: JobEnforcement | None = None, mounts: tuple[Mount, ...] = ()) -> DeviceGrant:
    """The grant of `allocation` (None or no GPU index: a job without a GPU).

    `device_uuids`: the devices it runs on (GPU UUIDs; a MIG instance's UUID); empty means those
    the allocation records. `enforcement`: how the node holds a fraction's memory limit, as the job
    sees it (paths inside its container); `mounts`: what brings those paths there
    (`enforcement_mounts`).
    """
    if allocation is None or not allocation.gpu_indices:
        env = {VISIBLE_DEVICES[0]: NO_DEVICE, VISIBLE_DEVICES[1]: "", NUM_OF_GPUS_VAR: "0", PORTION_VAR: "0"}
        return DeviceGrant(variables=env)
    devices = tuple(device_uuids) or allocation.device_uuids
    share = allocation.share_milli / MILLI
    env = {
        VISIBLE_DEVICES[0]: ",".join(devices),
        VISIBLE_DEVICES[1]: ",".join(devices),
        NUM_OF_GPUS_VAR: f"{allocation.gpus:g}",
        PORTION_VAR: f"{share:g}",
    }
    if allocation.kind == AllocationKind.FRACTION:
        fraction = f"{share:.3f}"
        env[RUNAI_LIMIT_VAR] = env[RUNAI_REQUEST_VAR] = fraction
        env[HOOK_ENFORCEMENT_VAR] = (enforcement.mechanism if enforcement else Mechanism.NONE).value
        if enforcement is not None:
            env[HOOK_LIMIT_VAR] = str(enforcement.limit_mib)
        elif allocation.memory_mib is not None:
            env[HOOK_LIMIT_VAR] = str(allocation.memory_mib)
    if allocation.kind == AllocationKind.MIG:
        if allocation.mig_profile:
            env[MIG_PROFILE_VAR] = allocation.mig_profile
        if allocation.memory_mib is not None:
            env[HOOK_LIMIT_VAR] = str(allocation.memory_mib)
    host_ipc = enforcement is not None and enforcement.mechanism is Mechanism.MPS
    return DeviceGrant(variables=env, enforcement=enforcement, devices=devices, mounts=mounts, host_ipc=host_ipc,
                       whole_gpus=allocation.kind == AllocationKind.GPU)


def enforcement_mounts(enforcement: JobEnforcement | None, *, hook_dir: os.PathLike[str] | str,
                       hook_target: str, hami_core_library: str, hami_core_target: str) -> tuple[Mount, ...]:
    """What a container needs from the host for `enforcement` (built with the container's paths,
    `hook_target` and `hami_core_target`): the framework hook, HAMi-core's library, the MPS pipe
    directory (at the same path: clients find the daemon by it)."""
    if enforcement is None:
        return ()
    mounts = []
    if Mechanism.FRAMEWORK in enforcement.layers:
        mounts.append(Mount(os.fspath(hook_dir), hook_target))
    if enforcement.mechanism is Mechanism.HAMI_CORE:
        mounts.append(Mount(hami_core_library, hami_core_target))
    if enforcement.mechanism is Mechanism.MPS:
        pipe = enforcement.env.get(MPS_PIPE_VAR, DEFAULT_MPS_PIPE_DIRECTORY)
        mounts.append(Mount(pipe, pipe, read_only=False))
    return tuple(mounts)

