"""Which enforcement mechanism a node uses: the node setting, and the choice it resolves to.

`choose_mechanism` is pure: it takes what `probe.probe_node` found on the node and the setting an
administrator gave (`runai-adm local init --enforcement ...`, or the chart value / node label on
Kubernetes) and returns the mechanism, or says what to install when an explicit one is missing.
"""

from __future__ import annotations

from enum import StrEnum

from ..errors import UserError
from .probe import DEFAULT_MPS_PIPE_DIRECTORY, NodeProbe


class Mechanism(StrEnum):
    """What limits a job's GPU memory.

    The first four are node settings. `MIG` is not a setting: it is what limits a job that runs in
    a MIG partition (the hardware), reported so that `runai describe job` says so.
    """

    HAMI_CORE = "hami-core"  # libvgpu.so, LD_PRELOADed: CUDA allocations beyond the limit fail
    MPS = "mps"  # an MPS control daemon: per-client pinned device memory limit
    FRAMEWORK = "framework"  # a Python start-up hook: PyTorch's allocator fraction, JAX's fraction
    NONE = "none"  # advisory: the limit is recorded and shown, nothing enforces it
    MIG = "mig"  # a MIG partition: the hardware holds the limit

    @property
    def advisory(self) -> bool:
        return self is Mechanism.NONE

    @property
    def display(self) -> str:
        """How `runai describe job` and `runai top node` show it: plain where the limit holds for
        any program, with its reach where it does not."""
        return _DISPLAY.get(self, self.value)


_DISPLAY = {
    Mechanism.FRAMEWORK: "framework (PyTorch/JAX only)",
    Mechanism.NONE: "none (advisory: not enforced)",
    Mechanism.MIG: "mig (hardware partition)",
}


def display_enforcement(value: str | None) -> str:
    """A stored mechanism name (`JobInfo.enforcement`, `GpuView.enforcement`) for display; `-` for
    none recorded, and an unknown name as it is."""
    if not value:
        return "-"
    try:
        return Mechanism(value).display
    except ValueError:
        return value


class EnforcementSetting(StrEnum):
    """A node's enforcement setting. `auto` picks the strongest mechanism the node offers."""

    AUTO = "auto"
    HAMI_CORE = "hami-core"
    MPS = "mps"
    FRAMEWORK = "framework"
    NONE = "none"


SETTINGS_TEXT = ", ".join(s.value for s in EnforcementSetting)


class EnforcementUnavailableError(UserError):
    """An explicit setting names a mechanism whose prerequisite is missing on the node."""


def parse_setting(text: str) -> EnforcementSetting:
    """`--enforcement` as typed (case and surrounding blanks ignored). Raises `UserError` listing
    the accepted values."""
    value = (text or "").strip().lower()
    try:
        return EnforcementSetting(value)
    except ValueError:
        raise UserError(f"unknown enforcement {text!r}", f"expected one of: {SETTINGS_TEXT}") from None


def choose_mechanism(setting: EnforcementSetting | str, probe: NodeProbe) -> Mechanism:
    """The mechanism a node setting resolves to on a node that offers what `probe` found.

    `auto`: hami-core when libvgpu.so is installed, else mps when a control daemon serves the GPU,
    else framework (always possible; it only needs the job to be a Python program). An explicit
    `hami-core` or `mps` whose prerequisite is missing raises `EnforcementUnavailableError` saying
    what to install; `framework` and `none` are always available.
    """
    setting = parse_setting(setting) if isinstance(setting, str) else setting
    if setting is EnforcementSetting.AUTO:
        if probe.hami_core_available:
            return Mechanism.HAMI_CORE
        if probe.mps_available:
            return Mechanism.MPS
        return Mechanism.FRAMEWORK
    if setting is EnforcementSetting.HAMI_CORE and not probe.hami_core_available:
        raise EnforcementUnavailableError(
            f"enforcement 'hami-core' needs HAMi-core's libvgpu.so at {probe.hami_core_path}, which is not there",
            "build HAMi-core (https://github.com/Project-HAMi/HAMi-core: `make`) and copy build/libvgpu.so "
            f"to {probe.hami_core_path}, or give the path where it is installed, or choose --enforcement auto "
            "or framework",
        )
    if setting is EnforcementSetting.MPS and not probe.mps_available:
        raise EnforcementUnavailableError(
            f"enforcement 'mps' needs an NVIDIA MPS control daemon serving this GPU; {probe.mps_problem()}",
            "start one as the GPU's user with `nvidia-cuda-mps-control -d` (set CUDA_MPS_PIPE_DIRECTORY for both "
            f"the daemon and runai-lite if it should not use {DEFAULT_MPS_PIPE_DIRECTORY}), or choose "
            "--enforcement auto or framework",
        )
    return Mechanism(setting.value)
