"""The pure parts of the process runner: the environment a job gets and the container command."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local.container_host import ContainerHost
from runai_lite.backends.local.runner import (
    CONTAINER_PATHS,
    container_argv,
    container_mounts,
    launch_environment,
    log_tail,
    runtime_failure_note,
)
from runai_lite.devices import ContainerDelivery, container_flags, grant
from runai_lite.enforcement import for_allocation
from runai_lite.model import Allocation, JobSpec

GPU = "GPU-0000"
MIG = "MIG-1111"


def _spec(**fields) -> JobSpec:
    return JobSpec(name="j", project="p", image="img:1", command=("python", "train.py"), **fields)


def test_a_mig_job_sees_only_its_partition() -> None:
    alloc = Allocation(kind="mig", node="n", gpu_indices=(0,), gpu_uuids=(GPU,), share_milli=286, memory_mib=9856,
                       mig_profile="2g.10gb", mig_start=0, mig_size=2, mig_uuid=MIG)
    env = launch_environment(_spec(env=(("CUDA_VISIBLE_DEVICES", "0"),)), "jid", grant(alloc))
    assert env["NVIDIA_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == MIG
    assert env["RUNAI_JOB_UUID"] == "jid" and env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == "9856"
    assert env["RUNAI_LITE_MIG_PROFILE"] == "2g.10gb"


def test_whole_gpus_and_no_gpu() -> None:
    alloc = Allocation(kind="gpu", node="n", gpu_indices=(0, 1), gpu_uuids=(GPU, "GPU-2"))
    env = launch_environment(_spec(), "jid", grant(alloc))
    assert env["NVIDIA_VISIBLE_DEVICES"] == f"{GPU},GPU-2" and env["RUNAI_NUM_OF_GPUS"] == "2"
    assert env["GPU_PORTION"] == "1"
    none = launch_environment(_spec(), "jid", grant(None))
    assert none["NVIDIA_VISIBLE_DEVICES"] == "void" and none["CUDA_VISIBLE_DEVICES"] == ""
    assert none["RUNAI_NUM_OF_GPUS"] == "0"


def test_container_command_passes_the_device_env_and_the_enforcement_files() -> None:
    alloc = Allocation(kind="fraction", node="n", gpu_indices=(0,), gpu_uuids=(GPU,), share_milli=500, memory_mib=20000)
    enforcement = for_allocation(alloc, "framework", **CONTAINER_PATHS)
    granted = grant(alloc, enforcement=enforcement, mounts=container_mounts(enforcement, "/usr/local/vgpu/libvgpu.so"))
    env = launch_environment(_spec(working_dir="/w"), "jid", granted)
    argv = container_argv(ContainerHost("docker"), "jid", _spec(working_dir="/w"), env,
                          container_flags(granted, ContainerDelivery.GPUS))
    assert argv[:2] == ["docker", "run"] and argv[-3:] == ["img:1", "python", "train.py"]
    assert ["--gpus", f"device={GPU}"] == argv[argv.index("--gpus"):argv.index("--gpus") + 2]
    assert f"NVIDIA_VISIBLE_DEVICES={GPU}" in argv and f"PYTHONPATH={CONTAINER_PATHS['hook_dir']}" in argv
    assert any(a.endswith(f":{CONTAINER_PATHS['hook_dir']}:ro") for a in argv)
    assert argv[argv.index("-w") + 1] == "/w"
    podman = ContainerHost("podman", ("--runtime", "runc"), ("--ulimit", "nofile=8:8"))
    simulated = container_argv(podman, "jid", _spec(replace_entrypoint=True), {},
                               container_flags(granted, ContainerDelivery.ENV))
    assert "--gpus" not in simulated and "--device" not in simulated  # the variable alone
    assert simulated[:4] == ["podman", "--runtime", "runc", "run"]  # the machine's options before `run`
    assert simulated[simulated.index("--ulimit") + 1] == "nofile=8:8"
    assert simulated[-4:] == ["--entrypoint", "python", "img:1", "train.py"]  # --command replaces the entrypoint


def test_log_tail_reads_the_end(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("x" * 100_000 + "CUDA error: out of memory\n")
    assert log_tail(log, 1000).endswith("out of memory\n") and len(log_tail(log, 1000)) == 1000
    assert log_tail(tmp_path / "missing") == ""


@pytest.mark.parametrize("runtime, code, output, note", [
    ("podman", 125, 'Trying to pull gcr.io/x/y:latest...\nError: initializing source docker://gcr.io/x/y:latest: '
     'pinging container registry gcr.io: dial tcp: lookup gcr.io: no such host\n',
     "podman could not create the container: Error: initializing source docker://gcr.io/x/y:latest: pinging "
     "container registry gcr.io: dial tcp: lookup gcr.io: no such host"),
    ("docker", 125, "Unable to find image 'x:1' locally\ndocker: Error response from daemon: pull access denied.\n",
     "docker could not create the container: docker: Error response from daemon: pull access denied."),
    ("podman", 125, "", "podman could not create the container (its error is in `runai logs`)"),
    ("podman", 3, "Error: the job's own failure\n", None),  # the command ran: its failure is its own
    ("process", 125, "Error: a program that exits 125\n", None),
])
def test_a_runtime_that_could_not_create_the_container_is_named_with_its_error(runtime, code, output, note):
    assert runtime_failure_note(runtime, code, output) == note
