"""Jobs as processes: the environment a job starts with, the command that runs it (directly or in
a container), its log's end, and how a container is stopped. How its processes are started,
tracked and killed is `tracking/`'s business.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from ...devices import DeviceGrant, Mount, enforcement_mounts, grant, process_environment
from ...enforcement import HOOK_DIR, JobEnforcement, Mechanism, for_allocation
from ...model import Allocation, JobSpec
from .container_host import ContainerHost

PROCESS = "process"  # the runtime name for "run the command directly"
CONTAINER_RUNTIMES = ("docker", "podman")
RUNTIME_VARIABLE = "RUNAI_LITE_RUNTIME"  # chooses the runtime instead of probing (tests, a machine's admin)


def probe_container_runtime(timeout: float = 5.0) -> str | None:
    """`docker` or `podman` when its daemon answers (`info` succeeds), else None."""
    for runtime in CONTAINER_RUNTIMES:
        path = shutil.which(runtime)
        if path is None:
            continue
        try:
            done = subprocess.run([path, "info"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return runtime
    return None


def container_name(job_id: str) -> str:
    return f"runai-lite-{job_id}"


def launch_environment(spec: JobSpec, job_id: str, granted: DeviceGrant, base: Mapping[str, str] | None = None
                    ) -> dict[str, str]:
    """The variables a job starts with: `base` (the daemon's own, for a process), the job's `-e`
    pairs, its identity, then its device grant (which wins, so a job cannot point itself at another
    job's device; its enforcement's `PYTHONPATH`/`LD_PRELOAD` go in front of the job's own)."""
    own = {**(base or {}), **dict(spec.env),
           "RUNAI_JOB_NAME": spec.name, "RUNAI_PROJECT": spec.project, "RUNAI_JOB_UUID": job_id}
    return process_environment(granted, own)


# Where a container finds what enforcement needs from the host (mounted read-only there).
CONTAINER_PATHS = {"hook_dir": "/opt/runai-lite/hook", "hami_core_library": "/opt/runai-lite/libvgpu.so"}


def device_grant(allocation: Allocation | None, mechanism: Mechanism, *, in_container: bool, hami_core_path: str,
                 gpu_memory_mib: int | None = None, hami_shared_cache: str | None = None) -> DeviceGrant:
    """What a job bound to `allocation` is given on this machine: in a container the enforcement's
    files are mounted at `CONTAINER_PATHS`; a process finds them where they are."""
    paths = CONTAINER_PATHS if in_container else {"hook_dir": HOOK_DIR, "hami_core_library": hami_core_path}
    enforcement = allocation and for_allocation(allocation, mechanism, gpu_memory_mib=gpu_memory_mib,
                                                hami_shared_cache=hami_shared_cache, **paths)
    mounts = container_mounts(enforcement or None, hami_core_path) if in_container else ()
    return grant(allocation, enforcement=enforcement or None, mounts=mounts)


def container_mounts(enforcement: JobEnforcement | None, hami_core_path: str) -> tuple[Mount, ...]:
    """The host files a container needs for `enforcement` (built with `CONTAINER_PATHS`)."""
    return enforcement_mounts(enforcement, hook_dir=HOOK_DIR, hook_target=CONTAINER_PATHS["hook_dir"],
                              hami_core_library=hami_core_path, hami_core_target=CONTAINER_PATHS["hami_core_library"])


def container_argv(host: ContainerHost, job_id: str, spec: JobSpec, env: Mapping[str, str],
                   extra: Sequence[str] = (), large_shm_mib: int = 0) -> list[str]:
    """`docker run` for a job, with the options this machine's runtime needs (`host`); `extra` are
    the options of its device grant (`devices.container_flags`); `large_shm_mib` the size of
    /dev/shm a `--large-shm` job gets."""
    argv = host.command("run", "--rm", "--name", container_name(job_id), "--init", *host.run_options)
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv += extra
    argv += resource_flags(spec, large_shm_mib if "--ipc" not in extra else 0)
    if spec.working_dir:
        argv += ["-w", spec.working_dir]
    if spec.replace_entrypoint and spec.command:  # `runai submit --command`: the words replace the entrypoint
        return [*argv, "--entrypoint", spec.command[0], spec.image, *spec.command[1:]]
    return [*argv, spec.image, *spec.command]


def resource_flags(spec: JobSpec, large_shm_mib: int) -> list[str]:
    """The container options of a job's host-resource, storage and network flags. Requests are
    only scheduled (the daemon's business); limits are the runtime's hard ones. With
    `--ipc host` (MPS) /dev/shm is the machine's own, so `--large-shm` adds nothing there."""
    argv: list[str] = []
    if spec.cpu_limit_milli:
        argv += ["--cpus", f"{spec.cpu_limit_milli / 1000:g}"]
    if spec.memory_limit_mib:
        argv += ["--memory", f"{spec.memory_limit_mib}m"]
    for volume in spec.volumes:
        argv += ["-v", f"{volume.host_path}:{volume.container_path}" + (":ro" if volume.read_only else "")]
    for port in spec.ports:
        argv += ["-p", f"{port.host_port}:{port.container_port}" if port.host_port else str(port.container_port)]
    if spec.large_shm and large_shm_mib:
        argv += ["--shm-size", f"{large_shm_mib}m"]
    return argv


def large_shm_mib(spec: JobSpec, machine_memory_mib: int) -> int:
    """/dev/shm for `--large-shm`: the job's memory limit, else half the machine's memory (as
    Kubernetes' memory-backed emptyDir is bounded by what the pod may use)."""
    return spec.memory_limit_mib or max(64, machine_memory_mib // 2)


def log_tail(path: Path, size: int = 64 * 1024) -> str:
    """The end of a job's log (what an error message is in), or "" when there is none."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - size))
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


# docker's and podman's exit code when the runtime itself failed, before the command could run
RUNTIME_FAILED = 125


def runtime_failure_note(runtime: str, code: int, output: str) -> str | None:
    """The sentence a failed attempt's event should carry when the container runtime could not
    create the container (an image it could not pull, say), with the runtime's own error from the
    end of the log; None when the command itself ran and failed."""
    if runtime not in CONTAINER_RUNTIMES or code != RUNTIME_FAILED:
        return None
    errors = [line.strip() for line in output.splitlines() if "Error" in line or "error" in line]
    said = f": {errors[-1]}" if errors else " (its error is in `runai logs`)"
    return f"{runtime} could not create the container{said}"


def stop_container(host: ContainerHost, job_id: str, grace_seconds: float) -> None:
    """Ask the runtime to stop the container too: killing the `docker run` client alone would
    leave the container running. Fire and forget; the shim records the end."""
    subprocess.Popen(host.command("stop", "--time", str(max(1, round(grace_seconds))), container_name(job_id)),
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def published_host_port(runtime: str, container: str, port: int) -> int | None:
    """The host port `runtime` published the container's `port` on (`docker|podman port`), or None."""
    try:
        done = subprocess.run([runtime, "port", container, f"{port}/tcp"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():  # "0.0.0.0:43567" (and "[::]:43567")
        _, _, number = line.strip().rpartition(":")
        if number.isdigit():
            return int(number)
    return None
