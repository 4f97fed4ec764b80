"""Choosing the GPU driver for this machine: the declared simulated inventory, else NVML."""

from __future__ import annotations

import os

from ..errors import OperationalError
from .driver import DriverError, GpuDriver
from .simulated import DECLARE_HINT, SimulatedDriver


def open_driver(state_dir: str | os.PathLike[str], simulate: str | None = None) -> GpuDriver:
    """The driver for this machine.

    - `simulate` given (e.g. "A100-SXM4-40GB:1"): declare that simulated inventory in `state_dir`
      and use it (a `UserError` for a bad spec);
    - else a simulated inventory declared earlier in `state_dir`: use it;
    - else NVML, when it finds at least one NVIDIA GPU;
    - else `OperationalError` saying how to proceed.
    """
    if simulate is not None:
        return SimulatedDriver(state_dir, simulate)
    if SimulatedDriver.is_declared(state_dir):
        return SimulatedDriver(state_dir)
    from .nvml import NvmlDriver  # pynvml loads only when NVML is really wanted

    try:
        driver = NvmlDriver()
        if driver.gpus():
            return driver
        driver.close()
        reason = "NVML found no GPU"
    except (DriverError, OperationalError) as error:
        reason = error.message
    raise OperationalError(f"no NVIDIA GPU/driver found ({reason})", DECLARE_HINT)
