"""The NVML driver: real NVIDIA GPUs through nvidia-ml-py (`pynvml`), the only module that touches it.

`pynvml` is imported when an `NvmlDriver` is made, never at module import, so the CLI starts fast
and machines without the library still import runai-lite.

What it does, following ../shared/reference/mig-and-nvml.md §4:
- discovers GPUs (name, UUID, memory, MIG mode current/pending) and caches their handles;
- builds each GPU's MIG profile table from NVML (every profile *index*, keyed by the profile *ID*
  NVML returns, placements from `nvmlDeviceGetGpuInstancePossiblePlacements`, memory from
  `memorySizeMB`) merged over the catalog entry: NVML's numbers win, the catalog supplies names;
- creates GPU instances at explicit placements (`nvmlDeviceCreateGpuInstanceWithPlacement`, the
  placement passed by reference) plus one compute instance spanning each, and reads the MIG device
  UUID from `nvmlComputeInstanceGetInfo(ci).device`;
- destroys compute instances then the GPU instance, idempotently (not found is done; a GPU
  instance left without compute instances by an earlier partial failure is finished off);
- lists the processes on a GPU or MIG device;
- turns NVML errors into `DriverError`s with a code, a message and a hint.

It never changes a GPU's MIG mode: that needs root and, on Ampere, a GPU reset; it is an
administrator's decision.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Callable
from types import ModuleType
from typing import Any, NoReturn, TypeVar

from ..errors import OperationalError, UserError
from ..units import MiB
from .catalog import Catalog, GpuModel, MigProfile, default_catalog
from .driver import DriverError, GpuDevice, MigDevice, MigMode

T = TypeVar("T")

# NVML return codes (nvml.h; identical in every pynvml release)
_INVALID_ARGUMENT = 2
_NOT_SUPPORTED = 3
_NO_PERMISSION = 4
_NOT_FOUND = 6
_INSUFFICIENT_SIZE = 7
_DRIVER_NOT_LOADED = 9
_TIMEOUT = 10
_LIBRARY_NOT_FOUND = 12
_IN_USE = 19
# nvmlProcessInfo_t.usedGpuMemory when the driver cannot say (NVML_VALUE_NOT_AVAILABLE, an unsigned -1)
_NOT_AVAILABLE = 2**64 - 1
_INSUFFICIENT_RESOURCES = 23

_PLACEMENTS_CAPACITY = 16
_PERMISSION_HINT = (
    "MIG management needs a privileged user: run as root, or grant read access to "
    "/proc/driver/nvidia/capabilities/mig/config"
)
# go-nvlib's suffixes for the profile-index variants, for GPUs the catalog does not know
_INDEX_SUFFIXES = {
    "REV1": "+me", "ALL_ME": "+me.all", "GFX": "+gfx", "NO_ME": "-me",
}


def _import_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError as error:
        raise OperationalError(
            f"cannot load NVML bindings: {error}", "install nvidia-ml-py: pip install nvidia-ml-py"
        ) from None
    return pynvml


def _text(value: str | bytes) -> str:
    """pynvml returns str in recent releases and bytes in older ones."""
    return value.decode() if isinstance(value, bytes) else value


class NvmlDriver:
    """A `GpuDriver` over the machine's NVIDIA GPUs.

    `NvmlDriver()` loads pynvml and initialises NVML; it raises `DriverError` (an
    `OperationalError`) when no NVIDIA driver is there. `nvml` replaces the pynvml module (tests
    pass a fake). Call `close()` when done.
    """

    simulated = False

    def __init__(self, nvml: ModuleType | Any | None = None, catalog: Catalog | None = None):
        self._nvml = nvml if nvml is not None else _import_pynvml()
        self._catalog = catalog or default_catalog()
        self._handles: dict[int, Any] = {}
        self._uuid_handles: dict[str, Any] = {}
        self._models: dict[int, GpuModel] = {}
        self._identities: dict[int, tuple[str, str, int]] = {}  # name, UUID, MiB: fixed per board
        self._call("initialise NVML", self._nvml.nvmlInit)
        self._open = True

    # ----------------------------------------------------------------------------------------
    # GpuDriver: reading

    def gpus(self) -> list[GpuDevice]:
        devices = []
        for index in range(self._call("count GPUs", self._nvml.nvmlDeviceGetCount)):
            name, uuid, memory_mib = self._identity(index)
            mode = self._read_mig_mode(self._handle(index), index)
            devices.append(
                GpuDevice(
                    index=index, uuid=uuid, name=name, memory_mib=memory_mib,
                    mig_capable=mode is not None, mig_enabled=bool(mode and mode.current), simulated=False,
                )
            )
        return devices

    def mig_mode(self, gpu_index: int) -> MigMode:
        mode = self._read_mig_mode(self._handle(gpu_index), gpu_index)
        if mode is None:
            raise DriverError("not-supported", f"GPU {gpu_index} does not support MIG")
        return mode

    def model(self, gpu_index: int) -> GpuModel:
        """The GPU's model: NVML's memory, profile IDs, sizes, placements and instance counts over
        the catalog entry, which supplies names (so names match the scheduler's) and fills in
        what NVML would not tell (placements need a privileged user)."""
        cached = self._models.get(gpu_index)
        if cached is None or (not cached.mig_capable and self._mig_on(self._handle(gpu_index), gpu_index)):
            # read again when MIG was switched on since: some drivers list no profiles while it is off
            self._models[gpu_index] = cached = self._read_model(gpu_index)
        return cached

    def mig_instances(self, gpu_index: int) -> list[MigDevice]:
        handle = self._handle(gpu_index)
        mode = self._read_mig_mode(handle, gpu_index)
        if mode is None or not mode.current:
            return []
        found = []
        for profile in self.model(gpu_index).profiles:
            for instance in self._gpu_instances(handle, gpu_index, profile):
                found.append(self._describe(gpu_index, profile, instance))
        return sorted(found, key=lambda d: d.start)

    def processes_on(self, uuid: str) -> list[int]:
        """PIDs running on GPU or MIG device `uuid` (compute and, where supported, graphics).
        `[]` when the device does not exist; a failed query raises `DriverError` (count it busy)."""
        nvml = self._nvml
        try:
            handle = self._uuid_handles.get(uuid) or nvml.nvmlDeviceGetHandleByUUID(uuid)
        except nvml.NVMLError as error:
            if error.value == _NOT_FOUND:
                return []
            self._raise(error, f"find device {uuid}")
        self._uuid_handles[uuid] = handle
        pids = {p.pid for p in self._call(f"list the processes on {uuid}", self._running_processes, handle, "Compute")}
        try:
            pids |= {p.pid for p in self._running_processes(handle, "Graphics")}
        except nvml.NVMLError as error:
            if error.value != _NOT_SUPPORTED:  # MIG devices have no graphics engine
                self._raise(error, f"list the graphics processes on {uuid}")
        return sorted(pids)

    def process_memory(self, uuid: str) -> dict[int, int | None]:
        """Compute processes on the device with `usedGpuMemory` (bytes; None or NVML's
        not-available value when the driver cannot say, e.g. without root on some drivers)."""
        nvml = self._nvml
        try:
            handle = self._uuid_handles.get(uuid) or nvml.nvmlDeviceGetHandleByUUID(uuid)
        except nvml.NVMLError as error:
            if error.value == _NOT_FOUND:
                return {}
            self._raise(error, f"find device {uuid}")
        self._uuid_handles[uuid] = handle
        found: dict[int, int | None] = {}
        for process in self._call(f"list the processes on {uuid}", self._running_processes, handle, "Compute"):
            used = getattr(process, "usedGpuMemory", None)
            found[process.pid] = used // MiB if isinstance(used, int) and 0 <= used < _NOT_AVAILABLE else None
        return found

    def _running_processes(self, handle: Any, kind: str) -> list[Any]:
        """`nvmlDevice<kind>RunningProcesses`, falling back to its `_v2` where the driver is older
        than the bindings (pynvml then raises NVMLLibraryMismatchError, not an NVMLError)."""
        nvml = self._nvml
        function = f"nvmlDeviceGet{kind}RunningProcesses"
        try:
            return getattr(nvml, function)(handle)
        except Exception as error:
            mismatch = getattr(nvml, "NVMLLibraryMismatchError", None)
            if mismatch is None or not isinstance(error, mismatch) or not hasattr(nvml, function + "_v2"):
                raise
            return getattr(nvml, function + "_v2")(handle)

    # ----------------------------------------------------------------------------------------
    # GpuDriver: changing

    def create_mig(self, gpu_index: int, profile: str, start: int) -> MigDevice:
        """Create `profile` at memory slice `start` and a compute instance spanning it.

        When the compute instance cannot be made, the GPU instance is destroyed again, so a failed
        call leaves nothing behind. Raises DriverError (`insufficient-resources` when the slices
        are taken, the compute slices used up or the profile's cap reached; `mig-disabled`;
        `no-permission`; `not-supported` for an unknown profile or start).
        """
        nvml = self._nvml
        handle = self._handle(gpu_index)
        self._require_mig_enabled(handle, gpu_index)
        wanted = self._profile(gpu_index, profile)
        if start not in wanted.starts:
            raise DriverError(
                "not-supported",
                f"{profile} cannot start at memory slice {start} on GPU {gpu_index}",
                "valid starts: " + ", ".join(map(str, wanted.starts)),
            )
        placement = nvml.c_nvmlGpuInstancePlacement_t()
        placement.start = start
        placement.size = wanted.memory_slices
        what = f"create {profile} at slice {start} on GPU {gpu_index}"
        gpu_instance = self._call(
            what, nvml.nvmlDeviceCreateGpuInstanceWithPlacement, handle, wanted.id, ctypes.byref(placement), gpu=gpu_index
        )
        try:
            ci_profile = self._spanning_ci_profile(gpu_instance, wanted, what)
            self._call(what + " (compute instance)", nvml.nvmlGpuInstanceCreateComputeInstance, gpu_instance, ci_profile.id)
            return self._describe(gpu_index, wanted, gpu_instance)
        except DriverError:
            self._finish_off(gpu_instance, what)
            raise

    def destroy_mig(self, gpu_index: int, gi_id: int) -> None:
        """Destroy every compute instance of GPU instance `gi_id`, then the GPU instance.

        Idempotent: an instance already gone is done, and one whose compute instances went in an
        earlier, partly failed call is finished off. Raises DriverError `in-use` while processes
        run on it.
        """
        nvml = self._nvml
        handle = self._handle(gpu_index)
        try:
            gpu_instance = nvml.nvmlDeviceGetGpuInstanceById(handle, gi_id)
        except nvml.NVMLError as error:
            if error.value == _NOT_FOUND:
                return
            if error.value == _NOT_SUPPORTED and not self._mig_on(handle, gpu_index):
                return  # MIG mode off: no GPU instance exists
            self._raise(error, f"find MIG instance {gi_id} on GPU {gpu_index}", gpu_index)
        self._destroy(gpu_instance, f"destroy MIG instance {gi_id} on GPU {gpu_index}")

    def close(self) -> None:
        if self._open:
            self._open = False
            self._handles.clear()
            self._uuid_handles.clear()
            self._call("shut NVML down", self._nvml.nvmlShutdown)

    # ----------------------------------------------------------------------------------------
    # Profiles

    def _read_model(self, gpu_index: int) -> GpuModel:
        handle = self._handle(gpu_index)
        nvml_name, _, memory_mib = self._identity(gpu_index)
        known = self._catalog.find(nvml_name)
        name = known.name if known else nvml_name.removeprefix("NVIDIA ").strip()
        aliases = tuple(dict.fromkeys([*(known.aliases if known else ()), nvml_name]))
        plain = GpuModel(name=name, aliases=aliases, memory_mib=memory_mib, pci_device_ids=known.pci_device_ids if known else ())
        if self._read_mig_mode(handle, gpu_index) is None:
            return plain
        profiles = self._read_profiles(handle, gpu_index, known)
        if not profiles:
            return plain
        memory_slices = max(s + p.memory_slices for p in profiles for s in p.starts)
        if known and known.memory_slices and all(p.estimated for p in profiles):
            memory_slices = known.memory_slices
        return plain.model_copy(
            update={
                "profiles": tuple(profiles),
                "compute_slices": max(p.compute for p in profiles),
                "memory_slices": memory_slices,
                "verified": not any(p.estimated for p in profiles),
            }
        )

    def _read_profiles(self, handle: Any, gpu_index: int, known: GpuModel | None) -> list[MigProfile]:
        nvml = self._nvml
        infos: list[tuple[int, Any]] = []
        for index in range(nvml.NVML_GPU_INSTANCE_PROFILE_COUNT):
            try:
                info = nvml.nvmlDeviceGetGpuInstanceProfileInfo(handle, index)
            except nvml.NVMLError as error:
                if error.value in (_NOT_SUPPORTED, _INVALID_ARGUMENT):
                    continue  # this GPU has no profile at that index
                self._raise(error, f"read MIG profile {index} of GPU {gpu_index}", gpu_index)
            if info.instanceCount and info.memorySizeMB and info.id not in {i.id for _, i in infos}:
                infos.append((index, info))
        largest = max((info.memorySizeMB for _, info in infos), default=0)
        total_slices = known.memory_slices if known and known.memory_slices else None
        profiles = []
        for index, info in infos:
            listed = next((p for p in (known.profiles if known else ()) if p.id == info.id and p.compute == info.sliceCount), None)
            placements = self._possible_placements(handle, gpu_index, info.id)
            if placements:
                size, starts, estimated = placements[0][1], tuple(sorted(s for s, _ in placements)), False
            elif listed:
                size, starts, estimated = listed.memory_slices, listed.starts, False
            else:
                size, starts = _estimate_placements(info, largest, total_slices or (8 if info.sliceCount <= 7 else info.sliceCount))
                estimated = True
            profiles.append(
                MigProfile(
                    name=listed.name if listed else self._derived_name(index, info),
                    id=info.id,
                    compute=info.sliceCount,
                    memory_slices=size,
                    memory_mib=int(info.memorySizeMB),
                    max_instances=info.instanceCount,
                    starts=starts,
                    estimated=estimated,
                )
            )
        return profiles

    def _possible_placements(self, handle: Any, gpu_index: int, profile_id: int) -> list[tuple[int, int]] | None:
        """(start, size) pairs NVML allows for the profile; None when NVML will not say (an
        unprivileged user, or a driver without the call)."""
        nvml = self._nvml
        capacity = _PLACEMENTS_CAPACITY
        for _ in range(2):
            array = (nvml.c_nvmlGpuInstancePlacement_t * capacity)()
            count = ctypes.c_uint(capacity)
            try:
                nvml.nvmlDeviceGetGpuInstancePossiblePlacements(handle, profile_id, array, ctypes.byref(count))
            except nvml.NVMLError as error:
                if error.value == _INSUFFICIENT_SIZE and count.value > capacity:
                    capacity = count.value
                    continue
                if error.value in (_NO_PERMISSION, _NOT_SUPPORTED):
                    return None
                self._raise(error, f"read the placements of MIG profile {profile_id} on GPU {gpu_index}", gpu_index)
            return [(array[i].start, array[i].size) for i in range(count.value)]
        return None

    def _derived_name(self, index: int, info: Any) -> str:
        """A name for a profile the catalog does not list: NVML's own (v2 info), else go-nvlib's
        `<slices>g.<GB>gb` with its suffix for the index variant."""
        reported = _text(getattr(info, "name", b"") or b"").removeprefix("MIG ").strip()
        if reported:
            return reported
        suffix = next(
            (
                text
                for key, text in _INDEX_SUFFIXES.items()
                for slices in (1, 2, 3, 4, 6, 7, 8)
                if getattr(self._nvml, f"NVML_GPU_INSTANCE_PROFILE_{slices}_SLICE_{key}", None) == index
            ),
            "",
        )
        return f"{info.sliceCount}g.{math.ceil(info.memorySizeMB / 1024)}gb{suffix}"

    def _profile(self, gpu_index: int, name: str) -> MigProfile:
        try:
            return self.model(gpu_index).profile(name)
        except UserError as error:
            raise DriverError("not-supported", error.message, error.hint) from None

    # ----------------------------------------------------------------------------------------
    # Instances

    def _gpu_instances(self, handle: Any, gpu_index: int, profile: MigProfile) -> list[Any]:
        nvml = self._nvml
        array = (nvml.c_nvmlGpuInstance_t * profile.max_instances)()
        count = ctypes.c_uint(profile.max_instances)
        self._call(
            f"list the {profile.name} instances on GPU {gpu_index}",
            nvml.nvmlDeviceGetGpuInstances, handle, profile.id, array, ctypes.byref(count), gpu=gpu_index,
        )
        return [array[i] for i in range(count.value)]

    def _spanning_ci_profile(self, gpu_instance: Any, profile: MigProfile, what: str) -> Any:
        """The compute-instance profile as wide as the GPU instance, with shared engines."""
        nvml = self._nvml
        ci_index = getattr(nvml, f"NVML_COMPUTE_INSTANCE_PROFILE_{profile.compute}_SLICE", None)
        if ci_index is None:
            raise DriverError("not-supported", f"cannot {what}: NVML has no {profile.compute}-slice compute instance profile")
        return self._call(
            what + " (compute instance profile)",
            nvml.nvmlGpuInstanceGetComputeInstanceProfileInfo,
            gpu_instance, ci_index, nvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED,
        )

    def _compute_instances(self, gpu_instance: Any, ci_profile: Any, what: str) -> list[Any]:
        nvml = self._nvml
        capacity = max(1, ci_profile.instanceCount)
        array = (nvml.c_nvmlComputeInstance_t * capacity)()
        count = ctypes.c_uint(capacity)
        self._call(what, nvml.nvmlGpuInstanceGetComputeInstances, gpu_instance, ci_profile.id, array, ctypes.byref(count))
        return [array[i] for i in range(count.value)]

    def _describe(self, gpu_index: int, profile: MigProfile, gpu_instance: Any) -> MigDevice:
        """The MigDevice for a GPU instance: its placement and the MIG UUID of its spanning
        compute instance, else of its first smaller one (an administrator's split; NVML refuses to
        destroy it while it runs processes), else `uuid == ""` for one with no compute instance."""
        nvml = self._nvml
        what = f"read a {profile.name} instance on GPU {gpu_index}"
        gi_info = self._call(what, nvml.nvmlGpuInstanceGetInfo, gpu_instance)
        uuid, ci_id = "", -1
        computes = self._compute_instances(gpu_instance, self._spanning_ci_profile(gpu_instance, profile, what), what)
        computes = computes or self._every_compute_instance(gpu_instance, what)
        if computes:
            ci_info = self._call(what, nvml.nvmlComputeInstanceGetInfo, computes[0])
            uuid = _text(self._call(what, nvml.nvmlDeviceGetUUID, ci_info.device))
            ci_id = ci_info.id
            self._uuid_handles[uuid] = ci_info.device
        return MigDevice(
            gpu_index=gpu_index,
            profile=profile.name,
            profile_id=profile.id,
            start=gi_info.placement.start,
            size=gi_info.placement.size,
            gi_id=gi_info.id,
            ci_id=ci_id,
            uuid=uuid,
            memory_mib=profile.memory_mib,
        )

    def _every_compute_instance(self, gpu_instance: Any, what: str) -> list[Any]:
        """The GPU instance's compute instances of every CI profile (an administrator may have
        split it into several smaller ones)."""
        nvml = self._nvml
        found = []
        for ci_index in range(nvml.NVML_COMPUTE_INSTANCE_PROFILE_COUNT):
            try:
                ci_profile = nvml.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                    gpu_instance, ci_index, nvml.NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED
                )
            except nvml.NVMLError as error:
                if error.value in (_NOT_SUPPORTED, _INVALID_ARGUMENT):
                    continue  # no CI profile at that index for this GPU instance
                self._raise(error, what)
            found += self._compute_instances(gpu_instance, ci_profile, what)
        return found

    def _destroy(self, gpu_instance: Any, what: str) -> None:
        """Destroy every compute instance of the GPU instance, then it; not found is done."""
        nvml = self._nvml
        for compute in self._every_compute_instance(gpu_instance, what):
            self._ignore_not_found(what + " (compute instance)", nvml.nvmlComputeInstanceDestroy, compute)
        self._ignore_not_found(what, nvml.nvmlGpuInstanceDestroy, gpu_instance)
        self._uuid_handles.clear()  # a MIG device handle may now be stale

    def _finish_off(self, gpu_instance: Any, what: str) -> None:
        """Roll back a half-made instance; a failure here is secondary to the one being raised."""
        try:
            self._destroy(gpu_instance, "roll back " + what)
        except DriverError:
            pass

    def _ignore_not_found(self, what: str, function: Callable[..., Any], *args: Any) -> None:
        try:
            function(*args)
        except self._nvml.NVMLError as error:
            if error.value != _NOT_FOUND:
                self._raise(error, what)

    # ----------------------------------------------------------------------------------------
    # Devices and MIG mode

    def _handle(self, gpu_index: int) -> Any:
        if gpu_index not in self._handles:
            self._handles[gpu_index] = self._call(
                f"open GPU {gpu_index}", self._nvml.nvmlDeviceGetHandleByIndex, gpu_index
            )
        return self._handles[gpu_index]

    def _identity(self, gpu_index: int) -> tuple[str, str, int]:
        """The board's NVML name, UUID and memory in MiB, read once."""
        if gpu_index not in self._identities:
            handle, nvml = self._handle(gpu_index), self._nvml
            self._identities[gpu_index] = (
                _text(self._call(f"read the name of GPU {gpu_index}", nvml.nvmlDeviceGetName, handle)),
                _text(self._call(f"read the UUID of GPU {gpu_index}", nvml.nvmlDeviceGetUUID, handle)),
                int(self._call(f"read the memory of GPU {gpu_index}", nvml.nvmlDeviceGetMemoryInfo, handle).total // MiB),
            )
        return self._identities[gpu_index]

    def _read_mig_mode(self, handle: Any, gpu_index: int) -> MigMode | None:
        """The MIG mode, or None for a GPU that cannot do MIG."""
        nvml = self._nvml
        try:
            current, pending = nvml.nvmlDeviceGetMigMode(handle)
        except nvml.NVMLError as error:
            if error.value == _NOT_SUPPORTED:
                return None
            self._raise(error, f"read the MIG mode of GPU {gpu_index}", gpu_index)
        return MigMode(current=current == nvml.NVML_DEVICE_MIG_ENABLE, pending=pending == nvml.NVML_DEVICE_MIG_ENABLE)

    def _mig_on(self, handle: Any, gpu_index: int) -> bool:
        mode = self._read_mig_mode(handle, gpu_index)
        return bool(mode and mode.current)

    def _require_mig_enabled(self, handle: Any, gpu_index: int) -> None:
        mode = self._read_mig_mode(handle, gpu_index)
        if mode is None:
            raise DriverError("not-supported", f"GPU {gpu_index} does not support MIG")
        if not mode.current:
            raise DriverError("mig-disabled", f"MIG mode is off on GPU {gpu_index}", _enable_hint(gpu_index, mode))

    # ----------------------------------------------------------------------------------------
    # Errors

    def _call(self, what: str, function: Callable[..., T], *args: Any, gpu: int | None = None) -> T:
        try:
            return function(*args)
        except self._nvml.NVMLError as error:
            self._raise(error, what, gpu)

    def _raise(self, error: Any, what: str, gpu_index: int | None = None) -> NoReturn:
        raise self._translate(error, what, gpu_index) from None

    def _translate(self, error: Any, what: str, gpu_index: int | None) -> DriverError:
        """An NVMLError as a DriverError with a code, NVML's own words and a hint."""
        code = getattr(error, "value", None)
        message = f"cannot {what}: {error}"
        if code == _INSUFFICIENT_RESOURCES:
            return DriverError(
                "insufficient-resources", message,
                "the placement overlaps an existing instance, the compute slices are used up, "
                "or the profile's instance limit is reached",
            )
        if code == _IN_USE:
            return DriverError("in-use", message, "processes still use it (nvidia-smi lists them); stop them first")
        if code == _NO_PERMISSION:
            return DriverError("no-permission", message, _PERMISSION_HINT)
        if code == _NOT_SUPPORTED:
            if gpu_index is not None:
                mode = self._read_mig_mode(self._handle(gpu_index), gpu_index)
                if mode is not None and not mode.current:
                    return DriverError("mig-disabled", f"cannot {what}: MIG mode is off on GPU {gpu_index}", _enable_hint(gpu_index, mode))
            return DriverError("not-supported", message)
        if code == _NOT_FOUND:
            return DriverError("not-found", message)
        if code == _TIMEOUT:
            return DriverError("timeout", message, "the GPU did not answer in time; it will be tried again")
        if code == _INVALID_ARGUMENT:
            return DriverError("not-supported", message)
        if code in (_DRIVER_NOT_LOADED, _LIBRARY_NOT_FOUND):
            return DriverError("not-found", f"no NVIDIA driver: {error}", "install the NVIDIA driver, or declare a simulated inventory")
        return DriverError("unknown", message)


def _enable_hint(gpu_index: int, mode: MigMode) -> str:
    if mode.pending:
        return f"MIG mode is pending on GPU {gpu_index}: reset the GPU (nvidia-smi -i {gpu_index} --gpu-reset) or reboot"
    return f"an administrator enables it: sudo nvidia-smi -i {gpu_index} -mig 1 (Ampere GPUs then need a GPU reset)"


def _estimate_placements(info: Any, largest_mib: int, total_slices: int) -> tuple[int, tuple[int, ...]]:
    """Size and aligned starts for a profile whose placements nobody could tell us."""
    size = max(1, min(total_slices, round(info.memorySizeMB / largest_mib * total_slices))) if largest_mib else 1
    return size, tuple(range(0, total_slices - size + 1, size))
