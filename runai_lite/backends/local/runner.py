"""Jobs as processes: the environment a job starts with, how it is launched (directly or in a
container), how its liveness and exit are read back, and how it is stopped.

Each attempt runs under `shim.py` in its own session. Liveness is the shim's `flock` on the
attempt's lock file (held by the shim and inherited by the job), not a pid that could be reused;
the exit status is a file the shim writes, so it survives a daemon restart.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...enforcement import DEFAULT_MPS_PIPE_DIRECTORY, HOOK_DIR, JobEnforcement, Mechanism
from ...model import MILLI, Allocation, JobSpec
from .paths import Home, lock_held, open_private

SHIM = Path(__file__).with_name("shim.py")
PROCESS = "process"  # the runtime name for "run the command directly"
CONTAINER_RUNTIMES = ("docker", "podman")
KILLED_EXIT_CODE = 128 + signal.SIGKILL


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


def device_environment(spec: JobSpec, allocation: Allocation | None, job_id: str) -> dict[str, str]:
    """The variables every job gets: its own `-e` pairs, then what runai-lite sets (which wins,
    so a job cannot point itself at another job's device)."""
    env = dict(spec.env)
    env.update({"RUNAI_JOB_NAME": spec.name, "RUNAI_PROJECT": spec.project, "RUNAI_JOB_UUID": job_id})
    if allocation is None:
        env.update({"NVIDIA_VISIBLE_DEVICES": "void", "CUDA_VISIBLE_DEVICES": "", "RUNAI_NUM_OF_GPUS": "0"})
        return env
    devices = allocation.mig_uuid if allocation.kind == "mig" and allocation.mig_uuid else ",".join(allocation.gpu_uuids)
    portion = allocation.share_milli / MILLI
    env.update({
        "NVIDIA_VISIBLE_DEVICES": devices,
        "CUDA_VISIBLE_DEVICES": devices,
        "RUNAI_NUM_OF_GPUS": f"{allocation.gpus:g}",
        "GPU_PORTION": f"{portion:.3f}" if allocation.kind == "fraction" else f"{allocation.gpus:g}",
        "RUNAI_GPU_MEMORY_LIMIT": f"{portion:.3f}" if allocation.kind == "fraction" else "1.000",
    })
    if allocation.memory_mib is not None:
        env["RUNAI_GPU_MEMORY_LIMIT_MIB"] = str(allocation.memory_mib)
    return env


# Where a container finds what enforcement needs from the host (mounted read-only there).
CONTAINER_PATHS = {"hook_dir": "/opt/runai-lite/hook", "hami_core_library": "/opt/runai-lite/libvgpu.so"}


def container_enforcement_args(enforcement: JobEnforcement, hami_core_path: str) -> list[str]:
    """`docker run` options that bring the enforcement's files into the container (read-only): the
    framework hook, HAMi-core's library, or the MPS pipe directory with the host's IPC namespace."""
    args = ["-v", f"{HOOK_DIR}:{CONTAINER_PATHS['hook_dir']}:ro"] if Mechanism.FRAMEWORK in enforcement.layers else []
    if enforcement.mechanism is Mechanism.HAMI_CORE:
        args += ["-v", f"{hami_core_path}:{CONTAINER_PATHS['hami_core_library']}:ro"]
    if enforcement.mechanism is Mechanism.MPS:
        pipe = enforcement.env.get("CUDA_MPS_PIPE_DIRECTORY", DEFAULT_MPS_PIPE_DIRECTORY)
        args += ["-v", f"{pipe}:{pipe}", "--ipc", "host"]
    return args


def container_argv(runtime: str, job_id: str, spec: JobSpec, env: Mapping[str, str], devices: str | None,
                   real_gpus: bool, extra: Sequence[str] = ()) -> list[str]:
    """`docker run` for a job. Real GPUs are passed with `--gpus device=UUID`; a simulated GPU has
    no device to pass, so the job sees only its environment."""
    argv = [runtime, "run", "--rm", "--name", container_name(job_id), "--init"]
    if devices and real_gpus:
        argv += ["--gpus", f"device={devices}"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv += extra
    if spec.working_dir:
        argv += ["-w", spec.working_dir]
    if spec.replace_entrypoint and spec.command:  # `runai submit --command`: the words replace the entrypoint
        return [*argv, "--entrypoint", spec.command[0], spec.image, *spec.command[1:]]
    return [*argv, spec.image, *spec.command]


@dataclass(frozen=True)
class Attempt:
    """The files of one attempt of one job."""

    home: Home
    job_id: str
    number: int

    @property
    def lock(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "lock")

    @property
    def pidfile(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "pid")

    @property
    def exitfile(self) -> Path:
        return self.home.attempt_file(self.job_id, self.number, "exit")

    def launch(self, argv: list[str], env: Mapping[str, str], cwd: str | None) -> subprocess.Popen:
        """Start the attempt's shim in a new session, output appended to the job's log."""
        log_fd = open_private(self.home.job_log(self.job_id))
        try:
            return subprocess.Popen(
                [sys.executable, "-I", "-S", str(SHIM), str(self.lock), str(self.pidfile), str(self.exitfile),
                 cwd or "", "--", *argv],
                env=dict(env), stdin=subprocess.DEVNULL, stdout=log_fd, stderr=subprocess.STDOUT,
                start_new_session=True, close_fds=True,
            )
        finally:
            os.close(log_fd)

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def alive(self) -> bool:
        """True while the shim or any process of the job holds the attempt's lock."""
        return lock_held(self.lock)

    def exit_code(self) -> int | None:
        try:
            return int(json.loads(self.exitfile.read_text())["code"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def state(self) -> tuple[Literal["running", "exited", "absent"], int | None]:
        """`exited` with the code (the shim recorded it, or the attempt was killed outright:
        137); `running`; or `absent`: no shim ever got going (the launch never happened)."""
        code = self.exit_code()
        if code is not None:
            return "exited", code
        if self.alive():
            return "running", None
        code = self.exit_code()  # it may have finished between the two looks
        if code is not None:
            return "exited", code
        if self.pidfile.exists():
            return "exited", KILLED_EXIT_CODE
        return "absent", None

    def cleanup(self) -> None:
        for path in (self.lock, self.pidfile, self.exitfile):
            path.unlink(missing_ok=True)


def log_tail(path: Path, size: int = 64 * 1024) -> str:
    """The end of a job's log (what an error message is in), or "" when there is none."""
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - size))
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def signal_group(pgid: int, signum: int) -> bool:
    """Signal a job's process group; False when it is already gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def stop_container(runtime: str, job_id: str, grace_seconds: float) -> None:
    """Ask the runtime to stop the container too: killing the `docker run` client alone would
    leave the container running. Fire and forget; the shim records the end."""
    subprocess.Popen([runtime, "stop", "--time", str(max(1, round(grace_seconds))), container_name(job_id)],
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
