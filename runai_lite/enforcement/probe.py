"""What a node offers for enforcing GPU memory limits. Reads only; never starts or changes anything.

Looked for:
- HAMi-core's `libvgpu.so`, at a configurable path (default `/usr/local/vgpu/libvgpu.so`, where
  HAMi's device plugin installs it on nodes);
- an NVIDIA MPS control daemon: a running `nvidia-cuda-mps-control` process *and* its `control`
  pipe in the pipe directory (`CUDA_MPS_PIPE_DIRECTORY`, default `/tmp/nvidia-mps`), because a
  client reaches the daemon only through that pipe.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

DEFAULT_HAMI_CORE_PATH = "/usr/local/vgpu/libvgpu.so"
DEFAULT_MPS_PIPE_DIRECTORY = "/tmp/nvidia-mps"
MPS_CONTROL_PROGRAM = "nvidia-cuda-mps-control"


class NodeProbe(BaseModel):
    """What `probe_node` found. Plain data, so it can be stored, sent, or made up in tests."""

    model_config = ConfigDict(frozen=True)

    hami_core_path: str = DEFAULT_HAMI_CORE_PATH  # where libvgpu.so was looked for
    hami_core_installed: bool = False
    mps_pipe_directory: str = DEFAULT_MPS_PIPE_DIRECTORY
    mps_control_pipe: bool = False  # <pipe dir>/control exists and is a FIFO
    mps_control_pid: int | None = None  # a running nvidia-cuda-mps-control

    @property
    def hami_core_available(self) -> bool:
        return self.hami_core_installed

    @property
    def mps_available(self) -> bool:
        return self.mps_control_pipe and self.mps_control_pid is not None

    def mps_problem(self) -> str:
        """Why MPS is not available, in words (empty when it is)."""
        problems = []
        if self.mps_control_pid is None:
            problems.append(f"no {MPS_CONTROL_PROGRAM} process is running")
        if not self.mps_control_pipe:
            problems.append(f"there is no control pipe in {self.mps_pipe_directory}")
        return " and ".join(problems)


def probe_node(
    *,
    hami_core_path: str | os.PathLike[str] = DEFAULT_HAMI_CORE_PATH,
    environ: Mapping[str, str] | None = None,
    proc_root: str | os.PathLike[str] = "/proc",
) -> NodeProbe:
    """Look at this machine (or, in tests, at `proc_root` and the paths given) and say what it offers."""
    environ = os.environ if environ is None else environ
    pipe_dir = environ.get("CUDA_MPS_PIPE_DIRECTORY") or DEFAULT_MPS_PIPE_DIRECTORY
    return NodeProbe(
        hami_core_path=str(hami_core_path),
        hami_core_installed=_readable_file(Path(hami_core_path)),
        mps_pipe_directory=pipe_dir,
        mps_control_pipe=_is_fifo(Path(pipe_dir) / "control"),
        mps_control_pid=_find_process(Path(proc_root), MPS_CONTROL_PROGRAM),
    )


def _readable_file(path: Path) -> bool:
    try:
        return path.is_file() and os.access(path, os.R_OK)
    except OSError:
        return False


def _is_fifo(path: Path) -> bool:
    try:
        return stat.S_ISFIFO(path.stat().st_mode)
    except OSError:
        return False


def _find_process(proc_root: Path, program: str) -> int | None:
    """The lowest PID whose argv[0] names `program`. argv[0] rather than `comm`, which the kernel
    truncates to 15 characters ("nvidia-cuda-mps" would also match the MPS server)."""
    try:
        entries = sorted((int(e.name), e) for e in proc_root.iterdir() if e.name.isdigit())
    except OSError:
        return None
    for pid, entry in entries:
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:  # the process ended meanwhile, or is not ours to read
            continue
        if os.path.basename(argv0.decode(errors="replace")) == program:
            return pid
    return None
