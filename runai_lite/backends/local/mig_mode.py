"""MIG mode that follows the dynamic-MIG role, where this machine lets runai-lite switch it.

On real GPUs switching MIG mode needs a GPU reset, so an administrator does it (`nvidia-smi -mig 1`)
and runai-lite only checks. A simulated GPU declared without `:mig-on`/`:mig-off` stands for a
GPU whose administrator enables MIG when making the node dynamic-MIG: `set node-role` switches its
MIG mode on, `remove node-role` destroys its idle partitions and switches it off again, so the GPU
serves fractions and whole GPUs once more.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import OperationalError, UserError
from ...gpu.driver import DriverError
from ...gpu.simulated import SimulatedDriver


class MigModeSwitch:
    """The GPUs of one embedded machine whose MIG mode runai-lite may switch (none on NVML)."""

    def __init__(self, state_dir: Path):
        self._driver = SimulatedDriver(state_dir) if SimulatedDriver.is_declared(state_dir) else None

    def on_demand(self, index: int) -> bool:
        return self._driver is not None and self._driver.mig_mode_on_demand(index)

    def switch_on(self, index: int) -> None:
        self._switch(index, True)

    def switch_off(self, index: int) -> None:
        """Destroy the GPU's partitions (none may be in use), then switch MIG mode off."""
        assert self._driver is not None
        for instance in self._driver.mig_instances(index):
            try:
                self._driver.destroy_mig(index, instance.gi_id)
            except DriverError as error:
                raise UserError(f"GPU {index} still holds a partition in use: {error.message}",
                                "wait for the job on it to end (runai list), then remove the role again") from None
        self._switch(index, False)

    def _switch(self, index: int, enabled: bool) -> None:
        assert self._driver is not None
        try:
            self._driver.set_mig_mode(index, enabled)
        except DriverError as error:
            raise OperationalError(f"cannot switch MIG mode {'on' if enabled else 'off'} on GPU {index}: "
                                   f"{error.message}", error.hint) from None
