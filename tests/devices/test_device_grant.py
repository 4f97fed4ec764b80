"""One job environment for one allocation: the embedded runner and the Kubernetes binder agree.

The local path is what the daemon starts a job with (`runner.device_grant` + `launch_environment`,
less the job's identity); the Kubernetes path is the pod's device ConfigMap as the binder writes
it (`pod_enforcement` + `grant` + `pod_environment`), plus what the device plugin sets for whole GPUs.
"""

from __future__ import annotations

import pytest

from runai_lite.backends.kube.enforcement import pod_enforcement
from runai_lite.backends.local.runner import CONTAINER_PATHS, container_mounts, device_grant, launch_environment
from runai_lite.devices import (
    ContainerDelivery,
    container_delivery,
    container_flags,
    grant,
    pod_environment,
    process_environment,
)
from runai_lite.enforcement import Mechanism, for_allocation
from runai_lite.model import Allocation, JobSpec

GPU_MEMORY_MIB = 40536
IDENTITY = ("RUNAI_JOB_NAME", "RUNAI_PROJECT", "RUNAI_JOB_UUID")

ALLOCATIONS = {
    "no GPU": Allocation(kind="gpu", node="n", gpu_indices=()),
    "one GPU": Allocation(kind="gpu", node="n", gpu_indices=(0,), gpu_uuids=("GPU-a",)),
    "two GPUs": Allocation(kind="gpu", node="n", gpu_indices=(0, 1), gpu_uuids=("GPU-a", "GPU-b")),
    "half GPU": Allocation(kind="fraction", node="n", gpu_indices=(1,), gpu_uuids=("GPU-b",), share_milli=500,
                           memory_mib=GPU_MEMORY_MIB // 2),
    "10GB": Allocation(kind="fraction", node="n", gpu_indices=(1,), gpu_uuids=("GPU-b",), share_milli=236,
                       memory_mib=9537),
    "MIG 2g.10gb": Allocation(kind="mig", node="n", gpu_indices=(0,), gpu_uuids=("GPU-a",), share_milli=286,
                              memory_mib=9856, mig_profile="2g.10gb", mig_start=2, mig_size=2, mig_uuid="MIG-x"),
}


def local_env(allocation: Allocation, mechanism: Mechanism, *, in_container: bool) -> dict[str, str]:
    spec = JobSpec(name="j", project="p", image="img")
    on_gpus = allocation if allocation.gpu_indices else None  # as the daemon passes it
    granted = device_grant(on_gpus, mechanism, in_container=in_container, hami_core_path="/usr/lib/libvgpu.so",
                           gpu_memory_mib=GPU_MEMORY_MIB)
    env = launch_environment(spec, "id", granted)
    return {key: value for key, value in env.items() if key not in IDENTITY}


def kube_env(allocation: Allocation, mechanism: Mechanism) -> dict[str, str]:
    node = {"metadata": {"name": "n", "labels": {"runai-lite/enforcement": mechanism.value},
                         "annotations": {"runai-lite/hami-core-path": CONTAINER_PATHS["hami_core_library"]}}}
    uuids = [allocation.mig_uuid] if allocation.kind == "mig" else list(allocation.gpu_uuids)
    env = pod_environment(grant(allocation, uuids, enforcement=pod_enforcement(allocation, node)))
    if allocation.kind == "gpu" and allocation.gpu_indices:  # the NVIDIA device plugin's variables
        env["NVIDIA_VISIBLE_DEVICES"] = env["CUDA_VISIBLE_DEVICES"] = ",".join(allocation.gpu_uuids)
    return env


@pytest.mark.parametrize("what", ALLOCATIONS)
@pytest.mark.parametrize("in_container", [False, True])
def test_the_local_and_the_kubernetes_job_environments_are_identical(what: str, in_container: bool) -> None:
    allocation = ALLOCATIONS[what]
    assert local_env(allocation, Mechanism.NONE, in_container=in_container) == kube_env(allocation, Mechanism.NONE)


@pytest.mark.parametrize("what", ["half GPU", "10GB"])
def test_under_hami_core_they_differ_only_by_the_framework_hook_a_pod_lacks(what: str) -> None:
    allocation = ALLOCATIONS[what]
    local = local_env(allocation, Mechanism.HAMI_CORE, in_container=True)
    kube = kube_env(allocation, Mechanism.HAMI_CORE)
    assert local.pop("PYTHONPATH") == CONTAINER_PATHS["hook_dir"]
    assert local == kube
    assert kube["LD_PRELOAD"] == CONTAINER_PATHS["hami_core_library"]


def test_the_run_ai_values() -> None:
    env = {what: kube_env(a, Mechanism.NONE) for what, a in ALLOCATIONS.items()}
    assert env["no GPU"] == {"NVIDIA_VISIBLE_DEVICES": "void", "CUDA_VISIBLE_DEVICES": "", "RUNAI_NUM_OF_GPUS": "0",
                             "GPU_PORTION": "0"}
    assert (env["two GPUs"]["RUNAI_NUM_OF_GPUS"], env["two GPUs"]["GPU_PORTION"]) == ("2", "1")
    assert env["two GPUs"]["NVIDIA_VISIBLE_DEVICES"] == "GPU-a,GPU-b" and "RUNAI_GPU_MEMORY_LIMIT" not in env["two GPUs"]
    half = env["half GPU"]
    assert (half["RUNAI_NUM_OF_GPUS"], half["GPU_PORTION"], half["RUNAI_GPU_MEMORY_LIMIT"]) == ("0.5", "0.5", "0.500")
    assert half["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == str(GPU_MEMORY_MIB // 2)
    assert half["RUNAI_LITE_ENFORCEMENT"] == "none"
    mig = env["MIG 2g.10gb"]
    assert (mig["NVIDIA_VISIBLE_DEVICES"], mig["RUNAI_LITE_MIG_PROFILE"], mig["GPU_PORTION"]) == ("MIG-x", "2g.10gb",
                                                                                                 "0.286")
    assert mig["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == "9856"


def test_a_pod_of_whole_gpus_leaves_its_devices_to_the_device_plugin() -> None:
    env = pod_environment(grant(ALLOCATIONS["two GPUs"]))
    assert "NVIDIA_VISIBLE_DEVICES" not in env and env["RUNAI_NUM_OF_GPUS"] == "2"
    assert pod_environment(grant(ALLOCATIONS["half GPU"]))["NVIDIA_VISIBLE_DEVICES"] == "GPU-b"


def test_container_flags_pass_devices_by_gpus_or_cdi_and_mount_the_enforcement_files() -> None:
    half = ALLOCATIONS["half GPU"]
    mps = for_allocation(half, Mechanism.MPS, **CONTAINER_PATHS)
    granted = grant(half, enforcement=mps, mounts=container_mounts(mps, "/usr/lib/libvgpu.so"))
    flags = container_flags(granted, ContainerDelivery.GPUS)
    assert flags[:2] == ["--gpus", "device=GPU-b"] and flags[-2:] == ["--ipc", "host"]
    assert "/tmp/nvidia-mps:/tmp/nvidia-mps" in flags  # the pipe directory, writable
    assert any(f.endswith(f":{CONTAINER_PATHS['hook_dir']}:ro") for f in flags)
    cdi = container_flags(grant(ALLOCATIONS["two GPUs"]), ContainerDelivery.CDI)
    assert cdi == ["--device", "nvidia.com/gpu=GPU-a", "--device", "nvidia.com/gpu=GPU-b"]
    assert container_flags(grant(ALLOCATIONS["two GPUs"]), ContainerDelivery.ENV) == []


@pytest.mark.parametrize(("runtime", "real_gpus", "cdi_names", "expected"), [
    ("podman", True, {"GPU-a", "GPU-b", "GPU-c"}, ContainerDelivery.CDI),  # a spec names every device
    ("docker", True, {"GPU-a", "GPU-b"}, ContainerDelivery.CDI),
    ("podman", False, {"GPU-a", "GPU-b"}, ContainerDelivery.CDI),  # a simulated GPU an admin wrote a spec for
    ("docker", True, {"GPU-a"}, ContainerDelivery.GPUS),  # one device missing: not CDI
    ("podman", True, {"GPU-a"}, ContainerDelivery.ENV),  # podman has no --gpus: the toolkit's hook
    ("podman", True, set(), ContainerDelivery.ENV),
    ("docker", False, set(), ContainerDelivery.ENV),  # simulated: nothing to pass
])
def test_a_container_gets_its_gpus_by_cdi_where_a_spec_names_them(runtime, real_gpus, cdi_names, expected) -> None:
    devices = grant(ALLOCATIONS["two GPUs"]).devices
    assert container_delivery(runtime, devices, real_gpus=real_gpus, cdi_names=cdi_names) is expected
    assert container_delivery(runtime, (), real_gpus=real_gpus, cdi_names=cdi_names) is ContainerDelivery.ENV


def test_the_grant_wins_over_the_job_s_own_variables_and_keeps_its_python_path() -> None:
    half = ALLOCATIONS["half GPU"]
    granted = grant(half, enforcement=for_allocation(half, Mechanism.FRAMEWORK, hook_dir="/hook"))
    env = process_environment(granted, {"NVIDIA_VISIBLE_DEVICES": "all", "PYTHONPATH": "/mine"})
    assert env["NVIDIA_VISIBLE_DEVICES"] == "GPU-b" and env["PYTHONPATH"] == "/hook:/mine"
