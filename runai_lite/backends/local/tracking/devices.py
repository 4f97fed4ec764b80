"""Device confinement: a job may open only its own GPUs' device nodes, as Slurm's
`ConstrainDevices` does, where the kernel can enforce it.

The rules are pure (`device_denials`): every `/dev/nvidiaN` of a GPU the job was not given, and every
MIG capability (`/dev/nvidia-caps/nvidia-capN`, named in `/proc/driver/nvidia-caps/mig-minors`) of a
GPU or compute instance that is not the job's, plus the `config` capability (making MIG instances
is the daemon's business). `nvidiactl`, `nvidia-uvm` and the `monitor` capability stay open: every
CUDA process needs them and they give no GPU of their own.

Enforcement is the v1 `devices` controller (its `devices.deny`): the attempt gets a cgroup there and
the shim joins it beside its tracking cgroup (a hybrid machine has both). A machine with only a v2
hierarchy would need a BPF device program, which runai-lite does not load: confinement is then
reported as not enforced. A machine without NVIDIA device nodes has nothing to confine.

The GPU's node is `/dev/nvidia<index>`: runai-lite assumes NVML's index is the device minor, which
holds where `nvidia-smi` lists GPUs in PCI order (the usual case).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from . import cgroup
from .files import AttemptFiles

DEV_DIR_ENV = "RUNAI_LITE_DEV_DIR"  # where the NVIDIA device nodes are (tests point it elsewhere)
MIG_MINORS = Path("/proc/driver/nvidia-caps/mig-minors")
MIG_MINORS_ENV = "RUNAI_LITE_MIG_MINORS"


class Confinement(str, Enum):
    ENFORCED = "enforced"
    NOT_ENFORCED = "not enforced"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class NvidiaNodes:
    """The device numbers of this machine's NVIDIA nodes."""

    gpus: dict[int, tuple[int, int]] = field(default_factory=dict)  # /dev/nvidiaN: N -> (major, minor)
    caps_major: int | None = None
    mig_minors: dict[str, int] = field(default_factory=dict)  # "gpu0/gi1/ci0/access" -> minor

    @property
    def present(self) -> bool:
        return bool(self.gpus)


@dataclass(frozen=True)
class JobDevices:
    """What a job was given: whole GPUs (or the GPU of a fraction), or one MIG instance."""

    gpus: tuple[int, ...] = ()
    mig: tuple[int, int, int] | None = None  # (GPU index, GPU instance id, compute instance id)


_CAP = re.compile(r"^gpu(\d+)/gi(\d+)(?:/ci(\d+))?/access$")


def device_denials(nodes: NvidiaNodes, job: JobDevices) -> list[str]:
    """`devices.deny` lines (`c MAJOR:MINOR rwm`) that keep the job off what is not its own."""
    mine = set(job.gpus) | ({job.mig[0]} if job.mig else set())
    denials = [f"c {major}:{minor} rwm" for index, (major, minor) in sorted(nodes.gpus.items()) if index not in mine]
    if nodes.caps_major is None:
        return denials
    for name, minor in sorted(nodes.mig_minors.items(), key=lambda item: item[1]):
        if _cap_allowed(name, job):
            continue
        denials.append(f"c {nodes.caps_major}:{minor} rwm")
    return denials


def _cap_allowed(name: str, job: JobDevices) -> bool:
    if name == "monitor":
        return True
    match = _CAP.match(name)
    if match is None or job.mig is None:  # `config`, or any MIG capability for a job without MIG
        return False
    gpu, gi, ci = int(match[1]), int(match[2]), match[3]
    return (gpu, gi) == job.mig[:2] and (ci is None or int(ci) == job.mig[2])


def read_nvidia_nodes(dev: Path | None = None, mig_minors: Path | None = None) -> NvidiaNodes:
    dev = dev or Path(os.environ.get(DEV_DIR_ENV, "/dev"))
    mig_minors = mig_minors or Path(os.environ.get(MIG_MINORS_ENV, str(MIG_MINORS)))
    gpus: dict[int, tuple[int, int]] = {}
    for path in dev.glob("nvidia[0-9]*"):
        number = _char_device(path)
        if number is not None and path.name[len("nvidia"):].isdigit():
            gpus[int(path.name[len("nvidia"):])] = number
    caps_major = None
    for path in (dev / "nvidia-caps").glob("nvidia-cap*"):
        number = _char_device(path)
        if number is not None:
            caps_major = number[0]
            break
    minors: dict[str, int] = {}
    try:
        for line in mig_minors.read_text().splitlines():
            name, _, minor = line.rpartition(" ")
            if name and minor.isdigit():
                minors[name] = int(minor)
    except OSError:
        pass
    return NvidiaNodes(gpus=gpus, caps_major=caps_major, mig_minors=minors)


def _char_device(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    if not stat.S_ISCHR(info.st_mode):
        return None
    return os.major(info.st_rdev), os.minor(info.st_rdev)


@dataclass(frozen=True)
class DeviceConfiner:
    """Confines attempts through the v1 `devices` hierarchy at `mount` (None: cannot), or says
    why it does not."""

    nodes: NvidiaNodes
    mount: Path | None
    instance: str
    unavailable: str = ""  # why there is no usable devices controller

    @property
    def summary(self) -> tuple[Confinement, str]:
        """What this machine offers, for `runai-adm local status`."""
        if not self.nodes.present:
            return Confinement.NOT_APPLICABLE, "no NVIDIA device nodes on this machine"
        if self.mount is None:
            return Confinement.NOT_ENFORCED, self.unavailable
        return Confinement.ENFORCED, f"cgroup v1 devices controller at {self.mount}"

    def directory(self, files: AttemptFiles) -> Path | None:
        return None if self.mount is None else cgroup.instance_dir(self.mount, self.instance) / files.name

    def prepare(self, files: AttemptFiles, job: JobDevices) -> tuple[list[Path], Confinement, str]:
        """The cgroups the attempt's shim must join, and what a job's describe says about it."""
        state, why = self.summary
        directory = self.directory(files)
        if state is not Confinement.ENFORCED or directory is None:
            return [], state, why
        cgroup.make(directory)
        for rule in device_denials(self.nodes, job):
            cgroup.write(directory, "devices.deny", rule)
        allowed = sorted(set(job.gpus) | ({job.mig[0]} if job.mig else set()))
        gpus = ", ".join(f"/dev/nvidia{i}" for i in allowed) or "no GPU device"
        what = f"{gpus}" + (f" and the capabilities of MIG instance gi{job.mig[1]}/ci{job.mig[2]}" if job.mig else "")
        return [directory], Confinement.ENFORCED, f"device access limited to {what} (cgroup v1 devices)"

    def cleanup(self, files: AttemptFiles) -> None:
        directory = self.directory(files)
        if directory is not None:
            cgroup.remove(directory, timeout=0.2)


def job_devices(gpu_indices: Iterable[int], mig: tuple[int, int, int] | None) -> JobDevices:
    return JobDevices(gpus=() if mig else tuple(sorted(gpu_indices)), mig=mig)
