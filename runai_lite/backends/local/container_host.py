"""How this machine's container runtime must be called to run a job, found by looking at the
machine rather than assumed, and which GPUs it can hand over by CDI.

Rootful podman runs with defaults that fail on some hosts: its OCI runtime crun refuses a hybrid
cgroup layout (v1 hierarchies with cgroup v2 mounted beside them at /sys/fs/cgroup/unified), the
systemd cgroup manager needs systemd as init, and it asks for 1,048,576 open files and processes
per container, which only a process with CAP_SYS_RESOURCE may grant above its own hard limits.
`read_facts` reads those facts once; `container_host(facts)` (pure) turns them into the options
every call of the runtime takes (`run`, `exec`, `stop` alike), so a job's container is stopped and
entered with the settings it was started with. Docker needs none: its daemon owns those choices.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Where the Container Device Interface specs are read (the CDI standard's two directories, which
# podman and docker read, and where `nvidia-ctk cdi generate` and the GPU Operator write them).
CDI_SPEC_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
CDI_GPU_KIND = "nvidia.com/gpu"
CAP_SYS_RESOURCE = 24
PODMAN_DEFAULT_LIMIT = 1 << 20  # what rootful podman asks for open files and processes by default


@dataclass(frozen=True)
class HostFacts:
    """What `container_host` decides from, read off the machine by `read_facts`."""

    runtime: str  # docker | podman
    oci_runtime: str | None = None  # podman's configured OCI runtime (`podman info`)
    cgroup_manager: str | None = None  # podman's configured cgroup manager
    installed_oci_runtimes: frozenset[str] = frozenset()
    hybrid_cgroups: bool = False  # v1 hierarchies and a v2 one mounted side by side
    systemd_running: bool = True
    may_raise_limits: bool = True  # CAP_SYS_RESOURCE
    nofile: tuple[int, int] = (PODMAN_DEFAULT_LIMIT, PODMAN_DEFAULT_LIMIT)  # this process's (soft, hard)
    nproc: tuple[int, int] = (PODMAN_DEFAULT_LIMIT, PODMAN_DEFAULT_LIMIT)
    pid_max: int = 1 << 22


@dataclass(frozen=True)
class ContainerHost:
    """A runtime with the options this machine needs: `global_options` go before every
    subcommand, `run_options` into `run`."""

    runtime: str
    global_options: tuple[str, ...] = ()
    run_options: tuple[str, ...] = ()

    def command(self, *args: str) -> list[str]:
        return [self.runtime, *self.global_options, *args]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerHost:
        return cls(runtime=data["runtime"], global_options=tuple(data.get("global_options", ())),
                   run_options=tuple(data.get("run_options", ())))


def container_host_key(runtime: str) -> str:
    """The store's config key under which the daemon records its `ContainerHost` for `runtime`."""
    return f"container_host.{runtime}"


def container_host(facts: HostFacts) -> ContainerHost:
    """The options `facts` call for. Podman's choices are always spelled out, so that `exec` and
    `stop` use the runtime and cgroup manager the container was started with."""
    if facts.runtime != "podman":
        return ContainerHost(facts.runtime)
    global_options: list[str] = []
    oci = facts.oci_runtime
    if oci == "crun" and facts.hybrid_cgroups and "runc" in facts.installed_oci_runtimes:
        oci = "runc"
    if oci:
        global_options += ["--runtime", oci]
    manager = facts.cgroup_manager
    if manager == "systemd" and not facts.systemd_running:
        manager = "cgroupfs"
    if manager:
        global_options += ["--cgroup-manager", manager]
    run_options: list[str] = []
    if not facts.may_raise_limits:
        # This process's own limits can always be granted; a process limit above pid_max means
        # nothing more, and podman caps its own there.
        nproc_hard = min(facts.nproc[1], facts.pid_max)
        run_options += ["--ulimit", f"nofile={facts.nofile[0]}:{facts.nofile[1]}",
                        "--ulimit", f"nproc={min(facts.nproc[0], nproc_hard)}:{nproc_hard}"]
    return ContainerHost("podman", tuple(global_options), tuple(run_options))


def read_facts(runtime: str, timeout: float = 10.0) -> HostFacts:
    """This machine's facts for `runtime`, as the process that will run it sees them."""
    if runtime != "podman":
        return HostFacts(runtime)
    info: dict[str, Any] = {}
    try:
        done = subprocess.run([runtime, "info", "--format", "json"], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout, check=False)
        if done.returncode == 0:
            info = json.loads(done.stdout).get("host", {})
    except (OSError, subprocess.TimeoutExpired, ValueError):
        pass
    from .tracking.choice import parse_mountinfo  # the daemon's, not the CLI's

    mounts = parse_mountinfo(_read("/proc/self/mountinfo"))
    return HostFacts(
        runtime=runtime,
        oci_runtime=(info.get("ociRuntime") or {}).get("name"),
        cgroup_manager=info.get("cgroupManager"),
        installed_oci_runtimes=frozenset(name for name in ("crun", "runc") if shutil.which(name)),
        hybrid_cgroups={m.version for m in mounts} == {1, 2},
        systemd_running=Path("/run/systemd/system").is_dir(),  # sd_booted()'s test
        may_raise_limits=_has_capability(_read("/proc/self/status"), CAP_SYS_RESOURCE),
        nofile=resource.getrlimit(resource.RLIMIT_NOFILE),
        nproc=resource.getrlimit(resource.RLIMIT_NPROC),
        pid_max=int(_read("/proc/sys/kernel/pid_max") or 1 << 22),
    )


def _has_capability(status: str, bit: int) -> bool:
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> bit & 1)
    return os.geteuid() == 0


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


# ------------------------------------------------------------------------------ CDI


def cdi_gpu_names(specs: Iterable[Any]) -> frozenset[str]:
    """The device names of kind `nvidia.com/gpu` in parsed CDI specs (anything else is skipped)."""
    names: set[str] = set()
    for spec in specs:
        if not isinstance(spec, dict) or spec.get("kind") != CDI_GPU_KIND:
            continue
        for device in spec.get("devices") or ():
            if isinstance(device, dict) and isinstance(device.get("name"), str):
                names.add(device["name"])
    return frozenset(names)


def cdi_gpus(spec_dirs: Iterable[Path] = CDI_SPEC_DIRS) -> frozenset[str]:
    """The `nvidia.com/gpu` device names the CDI specs on this machine define (read at each launch:
    specs are regenerated when devices change). A spec that cannot be read or parsed names none."""
    import yaml  # the daemon's business only; CDI specs are YAML or JSON (which YAML reads too)

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    specs = []
    for directory in spec_dirs:
        try:
            files = sorted(p for p in directory.iterdir() if p.suffix in (".json", ".yaml", ".yml"))
        except OSError:
            continue
        for path in files:
            try:
                specs.append(yaml.load(path.read_text(), Loader=loader))  # noqa: S506 (a safe loader)
            except (OSError, yaml.YAMLError):
                continue
    return cdi_gpu_names(specs)
