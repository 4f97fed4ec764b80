"""A stand-in for the C library `libnvidia-ml.so.1` behind the *real* pynvml, served by a `FakeNvml`.

With `install(monkeypatch, fake)`, the real `pynvml` module's Python wrappers run unchanged and
call these C entry points instead of the shared library: each takes the ctypes arguments exactly
as pynvml passes them (buffers, `byref` out-parameters, caller-allocated arrays, the two-call
"how many processes?" protocol) and returns an `nvmlReturn_t` code. So the NVML driver is tested
through pynvml's own calling conventions and its own error classes, not just against a look-alike.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pynvml

from . import fake_pynvml
from .fake_pynvml import FakeNvml


def _copy_into(out_reference: Any, value: Any) -> None:
    """Write `value` (a ctypes struct or pointer) where a `byref(...)` out-parameter points."""
    target = out_reference._obj
    ctypes.memmove(ctypes.addressof(target), ctypes.addressof(value), ctypes.sizeof(value))


def _out(position: int, method: str, *inputs: int) -> Callable[..., None]:
    """An entry point that calls `fake.<method>(args[i] for i in inputs)` and writes the result
    to the out-parameter at `position`."""

    def entry(fake: FakeNvml, *args: Any) -> None:
        _copy_into(args[position], getattr(fake, method)(*(args[i] for i in inputs)))

    return entry


def _plain(method: str) -> Callable[..., None]:
    """An entry point whose arguments pass straight through (arrays, byref counts, handles)."""
    return lambda fake, *args: getattr(fake, method)(*args)


def _string(method: str) -> Callable[..., None]:
    def entry(fake: FakeNvml, handle: Any, buffer: Any, size: Any) -> None:
        buffer.value = getattr(fake, method)(handle).encode()[: size.value - 1]

    return entry


def _processes(method: str) -> Callable[..., int | None]:
    def entry(fake: FakeNvml, handle: Any, count_reference: Any, array: Any) -> int | None:
        found = getattr(fake, method)(handle)
        count = count_reference._obj
        if array is None or count.value < len(found):
            count.value = len(found)
            return pynvml.NVML_ERROR_INSUFFICIENT_SIZE if found else None
        for position, process in enumerate(found):
            array[position].pid = process.pid
            array[position].usedGpuMemory = process.usedGpuMemory
        count.value = len(found)
        return None

    return entry


def _mig_mode(fake: FakeNvml, handle: Any, current: Any, pending: Any) -> None:
    current._obj.value, pending._obj.value = fake.nvmlDeviceGetMigMode(handle)


_ENTRY_POINTS: dict[str, Callable[..., int | None]] = {
    "nvmlInitWithFlags": lambda fake, flags: fake.nvmlInit(),
    "nvmlShutdown": _plain("nvmlShutdown"),
    "nvmlDeviceGetCount_v2": lambda fake, count: setattr(count._obj, "value", fake.nvmlDeviceGetCount()),
    "nvmlDeviceGetHandleByIndex_v2": lambda fake, index, out: _copy_into(out, fake.nvmlDeviceGetHandleByIndex(index.value)),
    "nvmlDeviceGetHandleByUUID": lambda fake, uuid, out: _copy_into(out, fake.nvmlDeviceGetHandleByUUID(uuid.value)),
    "nvmlDeviceGetName": _string("nvmlDeviceGetName"),
    "nvmlDeviceGetUUID": _string("nvmlDeviceGetUUID"),
    "nvmlDeviceGetMemoryInfo": _out(1, "nvmlDeviceGetMemoryInfo", 0),
    "nvmlDeviceGetMigMode": _mig_mode,
    "nvmlDeviceGetGpuInstanceProfileInfoV": _out(2, "nvmlDeviceGetGpuInstanceProfileInfo", 0, 1),
    "nvmlDeviceGetGpuInstancePossiblePlacements_v2": _plain("nvmlDeviceGetGpuInstancePossiblePlacements"),
    "nvmlDeviceCreateGpuInstanceWithPlacement": _out(3, "nvmlDeviceCreateGpuInstanceWithPlacement", 0, 1, 2),
    "nvmlDeviceGetGpuInstances": _plain("nvmlDeviceGetGpuInstances"),
    "nvmlDeviceGetGpuInstanceById": _out(2, "nvmlDeviceGetGpuInstanceById", 0, 1),
    "nvmlGpuInstanceGetInfo": _out(1, "nvmlGpuInstanceGetInfo", 0),
    "nvmlGpuInstanceDestroy": _plain("nvmlGpuInstanceDestroy"),
    "nvmlGpuInstanceGetComputeInstanceProfileInfoV": _out(3, "nvmlGpuInstanceGetComputeInstanceProfileInfo", 0, 1, 2),
    "nvmlGpuInstanceCreateComputeInstance": _out(2, "nvmlGpuInstanceCreateComputeInstance", 0, 1),
    "nvmlGpuInstanceGetComputeInstances": _plain("nvmlGpuInstanceGetComputeInstances"),
    "nvmlComputeInstanceGetInfo_v2": _out(1, "nvmlComputeInstanceGetInfo", 0),
    "nvmlComputeInstanceDestroy": _plain("nvmlComputeInstanceDestroy"),
    "nvmlDeviceGetComputeRunningProcesses_v3": _processes("nvmlDeviceGetComputeRunningProcesses"),
    "nvmlDeviceGetComputeRunningProcesses_v2": _processes("nvmlDeviceGetComputeRunningProcesses_v2"),
    "nvmlDeviceGetGraphicsRunningProcesses_v3": _processes("nvmlDeviceGetGraphicsRunningProcesses"),
    "nvmlDeviceGetGraphicsRunningProcesses_v2": _processes("nvmlDeviceGetGraphicsRunningProcesses"),
}
_V3_ONLY = {"nvmlDeviceGetComputeRunningProcesses_v3", "nvmlDeviceGetGraphicsRunningProcesses_v3"}


class FakeLibNvml:
    """The C library as pynvml sees it: attributes are entry points returning return codes; an
    entry point it lacks is an AttributeError, which pynvml reports as FunctionNotFound."""

    def __init__(self, fake: FakeNvml):
        self.fake = fake

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name == "nvmlErrorString":
            return lambda code: str(fake_pynvml.NVMLError(code)).encode()
        entry = _ENTRY_POINTS.get(name)
        if entry is None or (self.fake.older_driver and name in _V3_ONLY):
            raise AttributeError(name)

        def call(*args: Any) -> int:
            try:
                code = entry(self.fake, *args)
            except fake_pynvml.NVMLError as error:
                return error.value
            return pynvml.NVML_SUCCESS if code is None else code

        return call


def install(monkeypatch: Any, fake: FakeNvml) -> Any:
    """Put `fake` behind the real pynvml for this test; returns the pynvml module."""
    monkeypatch.setattr(pynvml, "nvmlLib", FakeLibNvml(fake))
    monkeypatch.setattr(pynvml, "_nvmlGetFunctionPointer_cache", {})
    monkeypatch.setattr(pynvml, "_nvmlLib_refcount", 0)
    return pynvml
