"""A fake `pynvml` that behaves like the library on MIG-capable GPUs, for testing the NVML driver
without a GPU.

`FakeNvml(gpus=[FakeGpu.from_catalog("A100-SXM4-40GB"), ...])` is a drop-in for the `pynvml`
module (pass it as `NvmlDriver(nvml=...)`). What it keeps from the real library:

- constants and ctypes structure/handle types are the real ones, imported from `pynvml`;
- errors are `NVMLError` with generated `NVMLError_<CamelCase>` subclasses carrying `.value`,
  made exactly as pynvml's `_extractNVMLErrorsAsClasses` makes them, and `NVMLError(code)`
  returns the subclass;
- calling conventions are checked as the C library would feel them: placements and counts must
  be passed with `ctypes.byref`, arrays are caller-allocated and a too-small one gets
  `InsufficientSize` with the needed count; handles are opaque pointers (a NULL or stale handle is
  `InvalidArgument`);
- profile *index* (ProfileInfo) versus profile *ID* (placements, create, list) are distinct, and
  IDs can be made family-specific;
- MIG mode (current/pending), privileged calls (`NoPermission` unless `privileged`), overlap /
  compute-slice / instance-cap refusals as `InsufficientResources`, `InUse` while processes run on
  a compute instance or compute instances exist on a GPU instance.

Test controls: `fail_next(function, code)`, `run_process(uuid, pid)`, `calls` (names called),
`process_query_error`, `driver_missing`, `older_driver`, and the `FakeGpu` fields.

`fake_libnvml.py` serves the same fake GPUs as a C library behind the real pynvml.
"""

from __future__ import annotations

import ctypes
import string
import sys
import uuid as uuidlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import pynvml as _real
from pynvml import (  # the constants this fake itself uses; every other NVML_* is copied below
    NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED,
    NVML_COMPUTE_INSTANCE_PROFILE_COUNT,
    NVML_ERROR_INSUFFICIENT_RESOURCES,
    NVML_ERROR_INSUFFICIENT_SIZE,
    NVML_ERROR_INVALID_ARGUMENT,
    NVML_ERROR_IN_USE,
    NVML_ERROR_LIBRARY_NOT_FOUND,
    NVML_ERROR_NOT_FOUND,
    NVML_ERROR_NOT_SUPPORTED,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_UNINITIALIZED,
    NVML_GPU_INSTANCE_PROFILE_COUNT,
    NVML_SUCCESS,
)

from runai_lite.gpu.catalog import MigProfile, default_catalog

# ------------------------------------------------------------------------------------------------
# Constants, types and errors, as pynvml has them

_module = sys.modules[__name__]
for _name in dir(_real):
    if _name.startswith("NVML_") and isinstance(getattr(_real, _name), int):
        setattr(_module, _name, getattr(_real, _name))

NVMLLibraryMismatchError = _real.NVMLLibraryMismatchError
c_nvmlDevice_t = _real.c_nvmlDevice_t
c_nvmlGpuInstance_t = _real.c_nvmlGpuInstance_t
c_nvmlComputeInstance_t = _real.c_nvmlComputeInstance_t
c_nvmlGpuInstancePlacement_t = _real.c_nvmlGpuInstancePlacement_t
c_nvmlGpuInstanceProfileInfo_v2_t = _real.c_nvmlGpuInstanceProfileInfo_v2_t
c_nvmlGpuInstanceInfo_t = _real.c_nvmlGpuInstanceInfo_t
c_nvmlComputeInstanceProfileInfo_v2_t = _real.c_nvmlComputeInstanceProfileInfo_v2_t
c_nvmlComputeInstanceInfo_t = _real.c_nvmlComputeInstanceInfo_t
c_nvmlMemory_t = _real.c_nvmlMemory_t
nvmlFriendlyObject = _real.nvmlFriendlyObject


class NVMLError(Exception):
    _valClassMapping: dict[int, type] = {}
    # pynvml asks the C library (nvmlErrorString) for codes missing from its table; these are
    # what the library answers for the ones MIG work meets
    _errcode_to_string = {
        **_real.NVMLError._errcode_to_string,
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_IN_USE: "In use by another client",
        NVML_ERROR_INSUFFICIENT_RESOURCES: "Insufficient Resources",
    }

    def __new__(typ, value):
        if typ == NVMLError:
            typ = NVMLError._valClassMapping.get(value, typ)
        obj = Exception.__new__(typ)
        obj.value = value
        return obj

    def __str__(self):
        return NVMLError._errcode_to_string.get(self.value, "NVML Error with code %d" % self.value)

    def __eq__(self, other):
        return self.value == other.value

    __hash__ = Exception.__hash__


def _extractNVMLErrorsAsClasses():
    for err_name in [x for x in dir(_module) if x.startswith("NVML_ERROR_")]:
        class_name = "NVMLError_" + string.capwords(err_name.replace("NVML_ERROR_", ""), "_").replace("_", "")
        err_val = getattr(_module, err_name)

        def gen_new(val):
            def new(typ, *args):
                return NVMLError.__new__(typ, val)

            return new

        new_error_class = type(class_name, (NVMLError,), {"__new__": gen_new(err_val)})
        new_error_class.__module__ = __name__
        setattr(_module, class_name, new_error_class)
        NVMLError._valClassMapping[err_val] = new_error_class


_extractNVMLErrorsAsClasses()

# ------------------------------------------------------------------------------------------------
# The fake hardware

_CI_SLICES = {0: 1, 1: 2, 2: 3, 3: 4, 4: 7, 5: 8, 6: 6}  # CI profile index → slices (REV1/NVL unsupported)
_GI_INDEX_BY_SLICES = {1: 0, 2: 1, 3: 2, 4: 3, 7: 4, 8: 5, 6: 6}


@dataclass
class FakeProfile:
    """A GPU-instance profile as NVML reports it."""

    index: int  # NVML_GPU_INSTANCE_PROFILE_* (what ProfileInfo takes)
    id: int  # info.id (what placements / create / list take)
    slices: int  # compute slices (info.sliceCount)
    instances: int  # info.instanceCount
    memory_mb: int  # info.memorySizeMB
    size: int  # memory slices a placement occupies
    starts: tuple[int, ...]
    name: str = ""  # the v2 info name ("MIG 1g.5gb"), "" to leave it empty


@dataclass
class FakeGpu:
    name: str
    memory_mib: int
    profiles: list[FakeProfile] = field(default_factory=list)
    uuid: str = field(default_factory=lambda: f"GPU-{uuidlib.uuid4()}")
    mig_capable: bool = True
    mig_current: bool = True
    mig_pending: bool | None = None  # None: same as current
    compute_slices: int = 7
    memory_slices: int = 8
    profiles_need_mig_on: bool = False  # ProfileInfo answers NotSupported while MIG is off (the ...V doc)

    @classmethod
    def from_catalog(cls, model_name: str, *, memory_drift_mb: int = 0, id_offset: int = 0, v2_names: bool = True, **fields: Any) -> FakeGpu:
        """A GPU whose profiles are the catalog's, with NVML's memory off by `memory_drift_mb`
        and profile IDs shifted by `id_offset` (IDs are family-specific: never hard-code them)."""
        model = default_catalog().get(model_name)
        profiles = [
            FakeProfile(
                index=_gi_index(p), id=p.id + id_offset, slices=p.compute, instances=p.max_instances,
                memory_mb=p.memory_mib + memory_drift_mb, size=p.memory_slices, starts=p.starts,
                name=f"MIG {p.name}" if v2_names else "",
            )
            for p in model.profiles
        ]
        nvml_name = next((a for a in model.aliases if a.startswith(("NVIDIA", "Tesla"))), model.name)
        defaults = {
            "name": nvml_name, "memory_mib": model.memory_mib, "profiles": profiles, "mig_capable": model.mig_capable,
            "mig_current": model.mig_capable, "compute_slices": model.compute_slices or 7,
            "memory_slices": model.memory_slices or 8,
        }
        return cls(**{**defaults, **fields})


def _gi_index(profile: MigProfile) -> int:
    if "+me" in profile.name:
        return _real.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1 if profile.compute == 1 else _real.NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1
    if profile.compute == 1 and profile.memory_slices == 2:
        return _real.NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV2
    return _GI_INDEX_BY_SLICES[profile.compute]


@dataclass
class _ComputeInstance:
    id: int
    profile_id: int
    slices: int
    uuid: str
    device: Any = None  # MIG device handle
    handle: Any = None


@dataclass
class _GpuInstance:
    gpu: int
    id: int
    profile: FakeProfile
    start: int
    handle: Any = None
    computes: dict[int, _ComputeInstance] = field(default_factory=dict)


_CArgObject = type(ctypes.byref(ctypes.c_int()))


def _deref(argument: Any, expected: type, what: str) -> Any:
    """The object a by-reference argument points at; a by-value one is refused as C would be."""
    if isinstance(argument, _CArgObject) and isinstance(argument._obj, expected):
        return argument._obj
    raise TypeError(f"{what} must be passed by reference (ctypes.byref) to a {expected.__name__}, got {type(argument).__name__}")


def _array(argument: Any, element: type, what: str) -> ctypes.Array:
    target = argument._obj if isinstance(argument, _CArgObject) else argument
    if isinstance(target, ctypes.Array) and target._type_ is element:
        return target
    raise TypeError(f"{what} must be a caller-allocated array of {element.__name__}, got {type(argument).__name__}")


def _nvml_function(privileged: bool = False) -> Callable:
    def decorate(function: Callable) -> Callable:
        @wraps(function)
        def call(self: FakeNvml, *args: Any, **kwargs: Any) -> Any:
            name = function.__name__
            self.calls.append(name)
            if name != "nvmlInit" and not self._initialised:
                raise NVMLError(NVML_ERROR_UNINITIALIZED)
            if self._failures[name]:
                raise NVMLError(self._failures[name].pop(0))
            if privileged and not self.privileged:
                raise NVMLError(NVML_ERROR_NO_PERMISSION)
            return function(self, *args, **kwargs)

        return call

    return decorate


class FakeNvml:
    """One fake NVML library instance: use it where the `pynvml` module would go."""

    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu], *, privileged: bool = True):
        self.gpus = gpus
        self.privileged = privileged
        self.driver_missing = False
        self.process_query_error: int | None = None
        self.older_driver = False  # lacks the unversioned (_v3) process queries: only _v2 answers
        self.calls: list[str] = []
        self._failures: defaultdict[str, list[int]] = defaultdict(list)
        self._initialised = 0
        self._objects: dict[int, tuple[str, Any]] = {}
        self._next_address = 0x1000
        self._instances: dict[int, dict[int, _GpuInstance]] = {i: {} for i in range(len(gpus))}
        self._processes_by_uuid: dict[str, list[int]] = defaultdict(list)
        self._used_memory: dict[int, int] = {}  # pid -> usedGpuMemory in bytes (1 MiB unless given)
        self._device_handles = [self._new_handle(c_nvmlDevice_t, ("gpu", i)) for i in range(len(gpus))]

    def __getattr__(self, name: str) -> Any:
        # constants, types and error classes are the module's
        return getattr(_module, name)

    # -- test controls -------------------------------------------------------------------------

    def fail_next(self, function: str, code: int, times: int = 1) -> None:
        self._failures[function].extend([code] * times)

    def run_process(self, uuid: str, pid: int, used_bytes: int = 2**20) -> None:
        """A process on the device; `used_bytes` is what NVML reports it uses (2**64 - 1: "not available")."""
        self._processes_by_uuid[uuid].append(pid)
        self._used_memory[pid] = used_bytes

    def stop_processes(self, uuid: str) -> None:
        self._processes_by_uuid.pop(uuid, None)

    def instances(self, gpu: int) -> list[tuple[str, int, int]]:
        """(profile v2 name or id, start, compute-instance count) of every GPU instance."""
        return sorted((gi.profile.name or str(gi.profile.id), gi.start, len(gi.computes)) for gi in self._instances[gpu].values())

    def add_bare_gpu_instance(self, gpu: int, profile_id: int, start: int) -> int:
        """A GPU instance without compute instance, as a crash between the two creates leaves."""
        placement = c_nvmlGpuInstancePlacement_t(start, self._profile(gpu, profile_id).size)
        handle = self.nvmlDeviceCreateGpuInstanceWithPlacement(self._device_handles[gpu], profile_id, ctypes.byref(placement))
        return self._resolve(handle, "gi").id

    # -- handles -------------------------------------------------------------------------------

    def _new_handle(self, handle_type: Any, target: tuple[str, Any]) -> Any:
        address = self._next_address
        self._next_address += 0x10
        self._objects[address] = target
        return ctypes.cast(ctypes.c_void_p(address), handle_type)

    def _resolve(self, handle: Any, kind: str) -> Any:
        address = ctypes.cast(handle, ctypes.c_void_p).value if handle is not None else None
        found = self._objects.get(address or 0)
        if found is None or found[0] != kind:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return found[1]

    def _gpu_of(self, device: Any) -> int:
        return self._resolve(device, "gpu")

    def _live_gi(self, handle: Any) -> _GpuInstance:
        gi = self._resolve(handle, "gi")
        if self._instances[gi.gpu].get(gi.id) is not gi:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return gi

    def _mig_enabled(self, gpu: int) -> None:
        if not self.gpus[gpu].mig_capable or not self.gpus[gpu].mig_current:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)

    def _profile(self, gpu: int, profile_id: int) -> FakeProfile:
        for profile in self.gpus[gpu].profiles:
            if profile.id == profile_id:
                return profile
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)

    @staticmethod
    def _answer_in(arrayRef: Any, countRef: Any, element: type, items: list[Any]) -> int:
        """Fill a caller-allocated array as NVML does: `count` in is its size, out the number
        filled; too small is InsufficientSize with the size needed."""
        count = _deref(countRef, ctypes.c_uint, "count")
        array = _array(arrayRef, element, "the result array")
        if count.value < len(items):
            count.value = len(items)
            raise NVMLError(NVML_ERROR_INSUFFICIENT_SIZE)
        for position, item in enumerate(items):
            array[position] = item
        count.value = len(items)
        return NVML_SUCCESS

    # -- library and devices -------------------------------------------------------------------

    @_nvml_function()
    def nvmlInit(self):
        if self.driver_missing:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
        self._initialised += 1

    @_nvml_function()
    def nvmlShutdown(self):
        self._initialised -= 1

    @_nvml_function()
    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    @_nvml_function()
    def nvmlDeviceGetHandleByIndex(self, index):
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self._device_handles[index]

    @_nvml_function()
    def nvmlDeviceGetHandleByUUID(self, uuid):
        uuid = uuid.decode() if isinstance(uuid, bytes) else uuid
        for index, gpu in enumerate(self.gpus):
            if gpu.uuid == uuid:
                return self._device_handles[index]
            for gi in self._instances[index].values():
                for ci in gi.computes.values():
                    if ci.uuid == uuid:
                        return ci.device
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    def _device_target(self, handle: Any) -> tuple[str, Any]:
        address = ctypes.cast(handle, ctypes.c_void_p).value if handle is not None else None
        found = self._objects.get(address or 0)
        if found is None or found[0] not in ("gpu", "mig"):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return found

    @_nvml_function()
    def nvmlDeviceGetName(self, handle):
        kind, target = self._device_target(handle)
        return self.gpus[target].name if kind == "gpu" else f"{self.gpus[target[0]].name} MIG {target[1].profile.name}"

    @_nvml_function()
    def nvmlDeviceGetUUID(self, handle):
        kind, target = self._device_target(handle)
        return self.gpus[target].uuid if kind == "gpu" else target[2].uuid

    @_nvml_function()
    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        kind, target = self._device_target(handle)
        mib = self.gpus[target].memory_mib if kind == "gpu" else target[1].profile.memory_mb
        memory = c_nvmlMemory_t()
        memory.total, memory.free, memory.used = mib * 2**20, mib * 2**20, 0
        return memory

    @_nvml_function()
    def nvmlDeviceGetMigMode(self, device):
        gpu = self.gpus[self._gpu_of(device)]
        if not gpu.mig_capable:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        pending = gpu.mig_current if gpu.mig_pending is None else gpu.mig_pending
        return [int(gpu.mig_current), int(pending)]

    # -- GPU-instance profiles -----------------------------------------------------------------

    @_nvml_function()
    def nvmlDeviceGetGpuInstanceProfileInfo(self, device, profile, version=2):
        gpu = self.gpus[self._gpu_of(device)]
        if not 0 <= profile < NVML_GPU_INSTANCE_PROFILE_COUNT:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        found = next((p for p in gpu.profiles if p.index == profile), None)
        if not gpu.mig_capable or found is None or (gpu.profiles_need_mig_on and not gpu.mig_current):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        info = c_nvmlGpuInstanceProfileInfo_v2_t()
        info.id, info.sliceCount, info.instanceCount = found.id, found.slices, found.instances
        info.memorySizeMB, info.multiprocessorCount, info.name = found.memory_mb, 14 * found.slices, found.name.encode()
        return info

    @_nvml_function(privileged=True)
    def nvmlDeviceGetGpuInstancePossiblePlacements(self, device, profileId, placementsRef, countRef):
        profile = self._profile(self._gpu_of(device), profileId)
        placements = [c_nvmlGpuInstancePlacement_t(s, profile.size) for s in profile.starts]
        return self._answer_in(placementsRef, countRef, c_nvmlGpuInstancePlacement_t, placements)

    # -- GPU instances -------------------------------------------------------------------------

    @_nvml_function(privileged=True)
    def nvmlDeviceCreateGpuInstanceWithPlacement(self, device, profileId, placement):
        gpu = self._gpu_of(device)
        wanted = _deref(placement, c_nvmlGpuInstancePlacement_t, "placement")
        self._mig_enabled(gpu)
        profile = self._profile(gpu, profileId)
        if wanted.start not in profile.starts or wanted.size != profile.size:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        existing = list(self._instances[gpu].values())
        taken = {s for gi in existing for s in range(gi.start, gi.start + gi.profile.size)}
        overlap = taken & set(range(wanted.start, wanted.start + wanted.size))
        compute = sum(gi.profile.slices for gi in existing) + profile.slices > self.gpus[gpu].compute_slices
        capped = sum(gi.profile.id == profileId for gi in existing) >= profile.instances
        if overlap or compute or capped:
            raise NVMLError(NVML_ERROR_INSUFFICIENT_RESOURCES)
        gi_id = min(set(range(1, len(existing) + 2)) - set(self._instances[gpu]))
        gi = _GpuInstance(gpu=gpu, id=gi_id, profile=profile, start=wanted.start)
        gi.handle = self._new_handle(c_nvmlGpuInstance_t, ("gi", gi))
        self._instances[gpu][gi_id] = gi
        return gi.handle

    @_nvml_function(privileged=True)
    def nvmlDeviceGetGpuInstances(self, device, profileId, gpuInstancesRef, countRef):
        gpu = self._gpu_of(device)
        self._mig_enabled(gpu)
        self._profile(gpu, profileId)
        found = sorted((gi for gi in self._instances[gpu].values() if gi.profile.id == profileId), key=lambda g: g.id)
        return self._answer_in(gpuInstancesRef, countRef, c_nvmlGpuInstance_t, [gi.handle for gi in found])

    @_nvml_function(privileged=True)
    def nvmlDeviceGetGpuInstanceById(self, device, gpuInstanceId):
        gpu = self._gpu_of(device)
        self._mig_enabled(gpu)
        if gpuInstanceId not in self._instances[gpu]:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return self._instances[gpu][gpuInstanceId].handle

    @_nvml_function()
    def nvmlGpuInstanceGetInfo(self, gpuInstance):
        gi = self._live_gi(gpuInstance)
        info = c_nvmlGpuInstanceInfo_t()
        info.device, info.id, info.profileId = self._device_handles[gi.gpu], gi.id, gi.profile.id
        info.placement = c_nvmlGpuInstancePlacement_t(gi.start, gi.profile.size)
        return info

    @_nvml_function(privileged=True)
    def nvmlGpuInstanceDestroy(self, gpuInstance):
        gi = self._resolve(gpuInstance, "gi")
        if self._instances[gi.gpu].get(gi.id) is not gi:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        if gi.computes:
            raise NVMLError(NVML_ERROR_IN_USE)
        del self._instances[gi.gpu][gi.id]
        return NVML_SUCCESS

    # -- compute instances ---------------------------------------------------------------------

    @_nvml_function()
    def nvmlGpuInstanceGetComputeInstanceProfileInfo(self, device, profile, engProfile, version=2):
        gi = self._live_gi(device)  # pynvml names the GPU-instance argument `device`
        if not 0 <= profile < NVML_COMPUTE_INSTANCE_PROFILE_COUNT or engProfile != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        slices = _CI_SLICES.get(profile)
        if slices is None or slices > gi.profile.slices:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        info = c_nvmlComputeInstanceProfileInfo_v2_t()
        info.id, info.sliceCount, info.instanceCount = profile, slices, gi.profile.slices // slices
        return info

    @_nvml_function(privileged=True)
    def nvmlGpuInstanceCreateComputeInstance(self, gpuInstance, profileId):
        gi = self._live_gi(gpuInstance)
        slices = _CI_SLICES.get(profileId)
        if slices is None or slices > gi.profile.slices:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        if sum(ci.slices for ci in gi.computes.values()) + slices > gi.profile.slices:
            raise NVMLError(NVML_ERROR_INSUFFICIENT_RESOURCES)
        ci_id = min(set(range(len(gi.computes) + 1)) - set(gi.computes))
        ci = _ComputeInstance(id=ci_id, profile_id=profileId, slices=slices, uuid=f"MIG-{uuidlib.uuid4()}")
        ci.device = self._new_handle(c_nvmlDevice_t, ("mig", (gi.gpu, gi, ci)))
        ci.handle = self._new_handle(c_nvmlComputeInstance_t, ("ci", (gi, ci)))
        gi.computes[ci_id] = ci
        return ci.handle

    @_nvml_function(privileged=True)
    def nvmlGpuInstanceGetComputeInstances(self, gpuInstance, profileId, computeInstancesRef, countRef):
        gi = self._live_gi(gpuInstance)
        found = [ci.handle for ci in sorted(gi.computes.values(), key=lambda c: c.id) if ci.profile_id == profileId]
        return self._answer_in(computeInstancesRef, countRef, c_nvmlComputeInstance_t, found)

    @_nvml_function()
    def nvmlComputeInstanceGetInfo(self, computeInstance):
        gi, ci = self._resolve(computeInstance, "ci")
        if gi.computes.get(ci.id) is not ci:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        info = c_nvmlComputeInstanceInfo_t()
        info.device, info.gpuInstance, info.id, info.profileId = ci.device, gi.handle, ci.id, ci.profile_id
        return info

    @_nvml_function(privileged=True)
    def nvmlComputeInstanceDestroy(self, computeInstance):
        gi, ci = self._resolve(computeInstance, "ci")
        if gi.computes.get(ci.id) is not ci:
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        if self._processes_by_uuid.get(ci.uuid):
            raise NVMLError(NVML_ERROR_IN_USE)
        del gi.computes[ci.id]
        return NVML_SUCCESS

    # -- processes -----------------------------------------------------------------------------

    def _processes(self, handle: Any) -> list[Any]:
        kind, target = self._device_target(handle)
        if self.process_query_error is not None:
            raise NVMLError(self.process_query_error)
        if kind == "gpu":
            uuids = [self.gpus[target].uuid]
            if self.gpus[target].mig_current:
                if not self.privileged:
                    raise NVMLError(NVML_ERROR_NO_PERMISSION)
                uuids += [ci.uuid for gi in self._instances[target].values() for ci in gi.computes.values()]
        else:
            uuids = [target[2].uuid]
        return [
            nvmlFriendlyObject({"pid": pid, "usedGpuMemory": self._used_memory.get(pid, 2**20),
                                "gpuInstanceId": 0xFFFFFFFF, "computeInstanceId": 0xFFFFFFFF})
            for uuid in uuids
            for pid in self._processes_by_uuid.get(uuid, [])
        ]

    @_nvml_function()
    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        if self.older_driver:  # what pynvml's throwOnVersionMismatch turns FunctionNotFound into
            raise NVMLLibraryMismatchError("Unversioned function called and the pyNVML version does not match the NVML lib version.")
        return self._processes(handle)

    @_nvml_function()
    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle):
        return self._processes(handle)

    @_nvml_function()
    def nvmlDeviceGetGraphicsRunningProcesses(self, handle):
        kind, _ = self._device_target(handle)
        if kind == "mig":
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return []
