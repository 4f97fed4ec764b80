"""Which process tracker a daemon uses: probed once at start (`probe_machine`), chosen by a pure
function of the setting and the probe (`choose_tracking`), as `enforcement.choose_mechanism`
chooses memory enforcement.

`auto` takes cgroup v2 where a v2 hierarchy is mounted and this daemon may create cgroups in it
(with `cgroup.kill`), else cgroup v1 (`pids` + `freezer`), else the process tree, and says why.
The mounts come from `/proc/self/mountinfo`, never from assumed paths.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ....errors import UserError
from . import cgroup
from .cgroup_v1 import CgroupV1Tracker
from .cgroup_v2 import CgroupV2Tracker
from .devices import DeviceConfiner, read_nvidia_nodes
from .process_tree import ProcessTreeTracker
from .protocol import ProcessTracker, TrackingKind

TRACKING_ENV = "RUNAI_LITE_TRACKING"  # overrides the home's `process_tracking` setting
SETTINGS = ("auto", *(kind.value for kind in TrackingKind))


class TrackingUnavailableError(UserError):
    """The process tracking asked for cannot be used on this machine."""


@dataclass(frozen=True)
class CgroupMount:
    path: Path
    version: int  # 1 or 2
    controllers: frozenset[str] = frozenset()  # v1: what the hierarchy carries


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup mounts in a `/proc/PID/mountinfo` text."""
    mounts = []
    for line in text.splitlines():
        head, sep, tail = line.partition(" - ")
        if not sep:
            continue
        fstype, _source, options = (tail.split(" ") + ["", ""])[:3]
        fields = head.split(" ")
        if len(fields) < 5 or fstype not in ("cgroup", "cgroup2"):
            continue
        path = Path(_unescape(fields[4]))
        if fstype == "cgroup2":
            mounts.append(CgroupMount(path, 2))
        else:
            mounts.append(CgroupMount(path, 1, frozenset(options.split(","))))
    return mounts


def _unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("040", "011", "012", "134"):
        text = text.replace("\\" + code, chr(int(code, 8)))
    return text


@dataclass(frozen=True)
class MountUse:
    """One hierarchy as this daemon could use it: `problem` is "" when it can create cgroups there."""

    path: Path | None
    problem: str = ""

    @property
    def usable(self) -> bool:
        return self.path is not None and not self.problem


@dataclass(frozen=True)
class TrackingProbe:
    v2: MountUse
    v2_kill: bool
    v1: dict[str, MountUse] = field(default_factory=dict)  # "pids", "freezer", "devices"


@dataclass(frozen=True)
class TrackingChoice:
    kind: TrackingKind
    reason: str


def choose_tracking(setting: str, probe: TrackingProbe) -> TrackingChoice:
    """What tracks processes, and why. An explicit setting the machine cannot honour is an error."""
    if setting not in SETTINGS:
        raise UserError(f"unknown process tracking {setting!r}", f"use one of: {', '.join(SETTINGS)}")
    v2_problem = _v2_problem(probe)
    v1_problem = _v1_problem(probe)
    if setting in ("auto", TrackingKind.CGROUP_V2.value) and not v2_problem:
        return TrackingChoice(TrackingKind.CGROUP_V2, f"cgroup v2 at {probe.v2.path}")
    if setting in ("auto", TrackingKind.CGROUP_V1.value) and not v1_problem:
        return TrackingChoice(TrackingKind.CGROUP_V1, "cgroup v1 pids and freezer at "
                              f"{probe.v1['pids'].path} and {probe.v1['freezer'].path}")
    if setting == TrackingKind.CGROUP_V2.value:
        raise TrackingUnavailableError(f"cgroup v2 tracking is not available: {v2_problem}")
    if setting == TrackingKind.CGROUP_V1.value:
        raise TrackingUnavailableError(f"cgroup v1 tracking is not available: {v1_problem}")
    reason = ("the process tree (the shim's lock and process group), as configured" if setting != "auto" else
              f"the process tree (the shim's lock and process group): no cgroup can be used "
              f"(v2: {v2_problem}; v1: {v1_problem})")
    return TrackingChoice(TrackingKind.PROCESS_TREE, reason)


def _v2_problem(probe: TrackingProbe) -> str:
    if probe.v2.path is None:
        return "no cgroup2 hierarchy is mounted"
    if probe.v2.problem:
        return probe.v2.problem
    return "" if probe.v2_kill else f"{probe.v2.path} has no cgroup.kill (Linux 5.14 or later)"


def _v1_problem(probe: TrackingProbe) -> str:
    problems = []
    for controller in ("pids", "freezer"):
        use = probe.v1.get(controller, MountUse(None))
        if use.path is None:
            problems.append(f"no {controller} hierarchy is mounted")
        elif use.problem:
            problems.append(use.problem)
    return "; ".join(problems)


def instance_name(home_root: Path) -> str:
    """The daemon's own cgroup directory name: two homes' daemons never share one."""
    return f"{os.geteuid()}-{hashlib.sha256(str(home_root).encode()).hexdigest()[:12]}"


def _try_create(mount: Path, instance: str) -> str:
    """"" when this process can create (and remove) a cgroup under `mount`, else why not."""
    probe = cgroup.instance_dir(mount, instance) / f"probe-{os.getpid()}"
    try:
        cgroup.make(probe)
        probe.rmdir()
    except OSError as error:
        return f"cannot create cgroups under {mount}: {error.strerror}"
    return ""


def probe_machine(instance: str, mountinfo: Path = Path("/proc/self/mountinfo")) -> TrackingProbe:
    """Read the mounts and try each hierarchy (creating and removing an empty cgroup)."""
    try:
        mounts = parse_mountinfo(mountinfo.read_text())
    except OSError:
        mounts = []
    v2_mount = next((m.path for m in mounts if m.version == 2), None)
    v2 = MountUse(v2_mount, _try_create(v2_mount, instance) if v2_mount else "")
    v2_kill = False
    if v2.usable:
        assert v2_mount is not None
        v2_kill = (v2_mount / "cgroup.kill").exists() or _has_kill(v2_mount, instance)
    v1 = {}
    for controller in ("pids", "freezer", "devices"):
        path = next((m.path for m in mounts if m.version == 1 and controller in m.controllers), None)
        v1[controller] = MountUse(path, _try_create(path, instance) if path else "")
    return TrackingProbe(v2=v2, v2_kill=v2_kill, v1=v1)


def _has_kill(mount: Path, instance: str) -> bool:
    """`cgroup.kill` exists in non-root cgroups only."""
    probe = cgroup.instance_dir(mount, instance) / f"probe-{os.getpid()}"
    try:
        cgroup.make(probe)
        return (probe / "cgroup.kill").exists()
    except OSError:
        return False
    finally:
        cgroup.remove(probe, timeout=0.0)


def open_tracker(choice: TrackingChoice, probe: TrackingProbe, instance: str) -> ProcessTracker:
    if choice.kind is TrackingKind.CGROUP_V2:
        assert probe.v2.path is not None
        return CgroupV2Tracker(probe.v2.path, instance)
    if choice.kind is TrackingKind.CGROUP_V1:
        pids, freezer = probe.v1["pids"].path, probe.v1["freezer"].path
        assert pids is not None and freezer is not None
        return CgroupV1Tracker(pids, freezer, instance)
    return ProcessTreeTracker()


def open_confiner(probe: TrackingProbe, instance: str) -> DeviceConfiner:
    devices = probe.v1.get("devices", MountUse(None))
    if devices.usable:
        return DeviceConfiner(read_nvidia_nodes(), devices.path, instance)
    why = devices.problem or ("only a cgroup v2 hierarchy: device programs (BPF) are not loaded by runai-lite"
                              if probe.v2.path is not None else "no devices cgroup controller")
    return DeviceConfiner(read_nvidia_nodes(), None, instance, unavailable=why)


STALE_SECONDS = 60.0  # an empty attempt cgroup this old is no launch under way


def release(probe: TrackingProbe, instance: str) -> None:
    """Remove this daemon's empty cgroups, and what this account's daemons that ended without doing
    so (killed ones) left: their attempt cgroups once empty and stale (a young empty one may be a
    launch under way, its shim about to join), then their directories once childless. rmdir
    refuses a cgroup with processes or children, and a daemon recreates its own as it needs it."""
    prefix = instance.split("-", 1)[0] + "-"
    now = time.time()
    for use in (probe.v2, *probe.v1.values()):
        if not use.usable:
            continue
        assert use.path is not None
        for directory in (use.path / cgroup.BASE).glob(prefix + "*"):
            min_age = 0.0 if directory.name == instance else STALE_SECONDS
            for attempt in _children(directory):
                if not cgroup.procs(attempt) and now - attempt.stat().st_mtime >= min_age:
                    cgroup.remove(attempt, timeout=0.0)
            if directory.is_dir() and not _children(directory):
                cgroup.remove(directory, timeout=0.0)


def _children(directory: Path) -> list[Path]:
    try:
        return [child for child in directory.iterdir() if child.is_dir()]
    except OSError:
        return []
