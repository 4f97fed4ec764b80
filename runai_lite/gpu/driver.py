"""The one interface both GPU drivers implement: `nvml` (real GPUs through nvidia-ml-py) and
`simulated` (a declared inventory, following the catalog's rules)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from ..errors import OperationalError
from .catalog import GpuModel

DriverErrorCode = Literal[
    "insufficient-resources", "in-use", "no-permission", "mig-disabled", "not-supported", "not-found", "timeout",
    "unknown",
]


class DriverError(OperationalError):
    """A GPU driver call failed. `code` says what kind of failure, for retries and messages."""

    def __init__(self, code: DriverErrorCode, message: str, hint: str | None = None):
        super().__init__(message, hint)
        self.code = code

    @property
    def retryable(self) -> bool:
        return self.code in ("insufficient-resources", "in-use", "timeout", "unknown")


@dataclass(frozen=True, slots=True)
class GpuDevice:
    index: int
    uuid: str
    name: str  # as NVML reports it, e.g. "NVIDIA A100-SXM4-40GB"
    memory_mib: int
    mig_capable: bool
    mig_enabled: bool  # current MIG mode
    simulated: bool = False


@dataclass(frozen=True, slots=True)
class MigDevice:
    """A GPU instance with its full-size compute instance, as it exists on the GPU."""

    gpu_index: int
    profile: str
    profile_id: int
    start: int
    size: int
    gi_id: int
    ci_id: int
    uuid: str
    memory_mib: int

    @property
    def complete(self) -> bool:
        """False for a GPU instance without any compute instance (left by a crash or a partial
        teardown): it has no MIG device UUID (`uuid == ""`, `ci_id == -1`), so nothing can run on
        it, and the agent destroys it and creates it afresh when it is wanted. Added for the
        drivers by the GPU-driver engineer (additive)."""
        return bool(self.uuid)


@dataclass(frozen=True, slots=True)
class MigMode:
    """A GPU's MIG mode: `current` is in effect; `pending` applies after a GPU reset (Ampere)."""

    current: bool
    pending: bool


class GpuDriver(Protocol):
    simulated: bool

    def gpus(self) -> list[GpuDevice]:
        """Every GPU on this machine, by index."""
        ...

    def model(self, gpu_index: int) -> GpuModel:
        """The GPU's model: the catalog entry with the values NVML reports taking precedence."""
        ...

    def mig_mode(self, gpu_index: int) -> MigMode:
        """The GPU's MIG mode, current and pending. Raises `DriverError("not-supported")` on a GPU
        that cannot do MIG."""
        ...

    def mig_instances(self, gpu_index: int) -> list[MigDevice]:
        """The GPU instances that exist on the GPU, by start slice; `[]` when MIG mode is off."""
        ...

    def create_mig(self, gpu_index: int, profile: str, start: int) -> MigDevice:
        """Create a GPU instance at an explicit placement plus a compute instance spanning it."""
        ...

    def destroy_mig(self, gpu_index: int, gi_id: int) -> None:
        """Destroy the compute instances, then the GPU instance. Idempotent: gone is done."""
        ...

    def processes_on(self, uuid: str) -> list[int]:
        """PIDs using the GPU or MIG device `uuid`; `[]` for a device that no longer exists.

        Raises `DriverError` when the query itself fails: callers must then count the device as
        busy (never destroy it on the strength of a failed query)."""
        ...

    def process_memory(self, uuid: str) -> dict[int, int | None]:
        """The processes on device `uuid` (as `processes_on`) with the GPU memory each uses, in MiB
        (None where the driver does not say: a simulated device, or NVML's "not available")."""
        ...

    def close(self) -> None:
        ...
