"""benchmarks/enforcement_gpu_check.py must work the first time a GPU is lent, so its control flow
runs here against stand-ins: an nvidia-smi that reports a 16 GiB GPU, an MPS control daemon that
only creates its pipe and a process, and the stand-in torch of fake_frameworks. What these runs
show is the script's bookkeeping, not enforcement."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .fake_frameworks import write_fake_torch

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "enforcement_gpu_check.py"

NVIDIA_SMI = """#!/bin/sh
echo "Stand-in GPU, 16384, Default, [N/A]"
"""

MPS_CONTROL = """#!/bin/bash
if [ "$1" = "-d" ]; then
  (exec -a nvidia-cuda-mps-control sleep 120) </dev/null >/dev/null 2>&1 &
  echo $! > "$CUDA_MPS_PIPE_DIRECTORY/pid"
  # As the real daemon, the pipe appears once the daemon runs (the script waits for the pipe).
  until tr '\0' ' ' < /proc/$!/cmdline | grep -q '^nvidia-cuda-mps-control'; do sleep 0.05; done
  mkfifo "$CUDA_MPS_PIPE_DIRECTORY/control"
  exit 0
fi
read command
if [ "$command" = quit ]; then
  kill "$(cat "$CUDA_MPS_PIPE_DIRECTORY/pid")"
  rm -f "$CUDA_MPS_PIPE_DIRECTORY/control" "$CUDA_MPS_PIPE_DIRECTORY/pid"
fi
"""

@pytest.fixture
def stand_ins(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("nvidia-smi", NVIDIA_SMI), ("nvidia-cuda-mps-control", MPS_CONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    write_fake_torch(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CUDA_", "RUNAI_", "XLA_"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(tmp_path / "site")
    return env


def run_script(env, *arguments):
    return subprocess.run([sys.executable, str(SCRIPT), *arguments], env=env, capture_output=True, text=True,
                          timeout=120)


def test_framework_and_advisory_cases(stand_ins, tmp_path):
    result = run_script(stand_ins, "--json", str(tmp_path / "out.json"), "--hami-core-path", str(tmp_path / "no.so"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["limit_mib"] == 4096
    outcome = {(c["variant"], c["size"]): (c["exit_code"], c["limit_named"]) for c in report["cases"]}
    assert outcome == {
        ("framework", "below"): (0, False), ("framework", "beyond"): (1, True),
        ("none", "below"): (0, False), ("none", "beyond"): (0, False),
    }
    assert "auto chooses framework" in result.stdout


def test_starts_probes_uses_and_stops_an_mps_daemon(stand_ins, tmp_path):
    result = run_script(stand_ins, "--start-mps", "--json", str(tmp_path / "out.json"),
                        "--hami-core-path", str(tmp_path / "no.so"))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["probe"]["mps_control_pipe"] and report["probe"]["mps_control_pid"]
    assert "auto chooses mps" in result.stdout
    variants = {(c["variant"], c["size"]): c for c in report["cases"]}
    assert variants[("mps alone", "beyond")]["exit_code"] == 1
    assert not variants[("mps alone", "beyond")]["limit_named"]  # no hook: MPS's own error only
    assert variants[("mps+framework", "beyond")]["limit_named"]
    # The daemon is gone: its pipe was removed and its process no longer runs.
    assert not Path(report["probe"]["mps_pipe_directory"], "control").exists()
    assert not _runs_as(report["probe"]["mps_control_pid"], b"nvidia-cuda-mps-control")


def _runs_as(pid, argv0):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().startswith(argv0)
    except OSError:
        return False


def test_refuses_without_nvidia_smi(tmp_path):
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    result = run_script(env)
    assert result.returncode == 2 and "needs a machine with an NVIDIA GPU" in result.stdout
