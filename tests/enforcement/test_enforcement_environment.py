"""The variables and preloads each mechanism gives a job, and how they merge into its environment."""

import ast
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runai_lite.enforcement import HOOK_DIR, Mechanism, for_allocation, hook_files, job_environment
from runai_lite.enforcement import environment as environment_module
from runai_lite.model import Allocation

FRAMEWORK_KEYS = {
    "PYTHONPATH", "RUNAI_LITE_GPU_MEMORY_LIMIT_MIB", "RUNAI_LITE_GPU_MEMORY_FRACTION", "RUNAI_LITE_ENFORCEMENT",
    "RUNAI_GPU_MEMORY_LIMIT", "RUNAI_GPU_MEMORY_REQUEST",
}


def quarter(mechanism, **options):
    return job_environment(mechanism, memory_limit_mib=4096, share_milli=250, **options)


def test_hami_core_preloads_libvgpu_and_sets_the_memory_limit():
    enforcement = quarter("hami-core", hami_core_library="/opt/hami/libvgpu.so")
    assert enforcement.mechanism is Mechanism.HAMI_CORE
    assert enforcement.layers == (Mechanism.HAMI_CORE, Mechanism.FRAMEWORK)
    assert enforcement.label == "hami-core+framework"
    assert enforcement.ld_preload == ("/opt/hami/libvgpu.so",)
    assert enforcement.env["CUDA_DEVICE_MEMORY_LIMIT"] == "4096m"
    assert "CUDA_DEVICE_SM_LIMIT" not in enforcement.env
    assert "CUDA_DEVICE_MEMORY_SHARED_CACHE" not in enforcement.env
    # JAX already sees the limit as the device's memory under HAMi-core.
    assert "XLA_PYTHON_CLIENT_MEM_FRACTION" not in enforcement.env
    assert set(enforcement.env) == FRAMEWORK_KEYS | {"CUDA_DEVICE_MEMORY_LIMIT"}
    assert enforcement.env["RUNAI_LITE_ENFORCEMENT"] == "hami-core"
    assert not enforcement.advisory and enforcement.limit_mib == 4096
    assert "4096 MiB" in enforcement.description


def test_hami_core_compute_share_and_private_accounting_file():
    enforcement = quarter("hami-core", compute_share=True, hami_shared_cache="/state/jobs/j1/vgpu.cache")
    assert enforcement.env["CUDA_DEVICE_SM_LIMIT"] == "25"
    assert enforcement.env["CUDA_DEVICE_MEMORY_SHARED_CACHE"] == "/state/jobs/j1/vgpu.cache"


def test_mps_sets_the_pinned_memory_limit_of_the_visible_device():
    enforcement = quarter("mps")
    assert enforcement.mechanism is Mechanism.MPS and enforcement.label == "mps+framework"
    assert enforcement.ld_preload == ()
    assert enforcement.env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=4096M"
    assert "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE" not in enforcement.env
    assert "CUDA_MPS_PIPE_DIRECTORY" not in enforcement.env
    assert enforcement.env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.250"


def test_mps_compute_share_and_pipe_directory():
    enforcement = quarter("mps", compute_share=True, mps_pipe_directory="/run/mps")
    assert enforcement.env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == "25"
    assert enforcement.env["CUDA_MPS_PIPE_DIRECTORY"] == "/run/mps"


def test_framework_alone():
    enforcement = quarter(Mechanism.FRAMEWORK, compute_share=True)
    assert enforcement.layers == (Mechanism.FRAMEWORK,) and enforcement.label == "framework"
    assert set(enforcement.env) == FRAMEWORK_KEYS | {"XLA_PYTHON_CLIENT_MEM_FRACTION"}
    assert enforcement.env["PYTHONPATH"] == str(HOOK_DIR)
    assert enforcement.env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == "4096"
    assert enforcement.env["RUNAI_LITE_GPU_MEMORY_FRACTION"] == "0.250"
    assert enforcement.env["RUNAI_GPU_MEMORY_LIMIT"] == "0.250"
    assert enforcement.ld_preload == () and not enforcement.advisory
    assert "Python" in enforcement.description


def test_framework_hook_directory_as_the_job_sees_it():
    assert quarter("framework", hook_dir="/runai-lite/hook").env["PYTHONPATH"] == "/runai-lite/hook"


@pytest.mark.parametrize("mechanism", ["hami-core", "mps"])
def test_without_the_hook_where_the_job_runs_no_pythonpath_and_no_framework_layer(mechanism):
    enforcement = quarter(mechanism, hook_dir=None)
    assert "PYTHONPATH" not in enforcement.env
    assert enforcement.layers == (Mechanism(mechanism),) and enforcement.label == mechanism
    assert enforcement.env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"] == "4096"
    assert "no PyTorch hook" in enforcement.description
    assert "PYTHONPATH" not in enforcement.apply({"PATH": "/bin"})


def test_without_the_hook_mps_still_gives_jax_its_fraction():
    assert quarter("mps", hook_dir=None).env["XLA_PYTHON_CLIENT_MEM_FRACTION"] == "0.250"


def test_framework_alone_needs_the_hook():
    with pytest.raises(ValueError):
        quarter("framework", hook_dir=None)


def test_none_is_advisory_and_sets_nothing():
    enforcement = quarter("none")
    assert enforcement.env == {} and enforcement.ld_preload == ()
    assert enforcement.advisory and enforcement.limit_mib == 4096
    assert "advisory" in enforcement.description
    base = {"PATH": "/usr/bin", "CUDA_DISABLE_CONTROL": "true", "PYTHONPATH": "/mine"}
    assert enforcement.apply(base) == base


def test_apply_prepends_paths_and_overrides_the_jobs_own_limits():
    base = {
        "PATH": "/usr/bin", "PYTHONPATH": "/mine", "LD_PRELOAD": "/lib/other.so",
        "CUDA_DEVICE_MEMORY_LIMIT": "80g", "CUDA_DISABLE_CONTROL": "true",
    }
    merged = quarter("hami-core", hami_core_library="/opt/libvgpu.so").apply(base)
    assert merged["PYTHONPATH"] == f"{HOOK_DIR}{os.pathsep}/mine"
    assert merged["LD_PRELOAD"] == "/opt/libvgpu.so:/lib/other.so"
    assert merged["CUDA_DEVICE_MEMORY_LIMIT"] == "4096m"
    assert "CUDA_DISABLE_CONTROL" not in merged
    assert merged["PATH"] == "/usr/bin"
    assert base["PYTHONPATH"] == "/mine"  # the job's own record is untouched


@given(
    mechanism=st.sampled_from(["hami-core", "mps", "framework", "none"]),
    pythonpath=st.sampled_from([None, "", "/mine", f"/a{os.pathsep}/b"]),
    preload=st.sampled_from([None, "", "/lib/other.so", "/lib/a.so:/lib/b.so"]),
)
def test_applying_twice_is_applying_once(mechanism, pythonpath, preload):
    base = {"PATH": "/usr/bin"}
    if pythonpath is not None:
        base["PYTHONPATH"] = pythonpath
    if preload is not None:
        base["LD_PRELOAD"] = preload
    enforcement = quarter(mechanism)
    once = enforcement.apply(base)
    assert enforcement.apply(once) == once


def test_apply_on_an_empty_environment():
    merged = quarter("hami-core", hami_core_library="/opt/libvgpu.so").apply({})
    assert merged["PYTHONPATH"] == str(HOOK_DIR) and merged["LD_PRELOAD"] == "/opt/libvgpu.so"


@pytest.mark.parametrize(("share_milli", "percent"), [(1, "1"), (4, "1"), (333, "33"), (500, "50"), (1000, "100")])
def test_compute_percentages_are_whole_and_at_least_one(share_milli, percent):
    enforcement = job_environment("mps", memory_limit_mib=100, share_milli=share_milli, compute_share=True)
    assert enforcement.env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] == percent


@pytest.mark.parametrize(
    ("mechanism", "options"),
    [("mig", {}), ("framework", {"memory_limit_mib": 0}), ("framework", {"share_milli": 0}),
     ("framework", {"share_milli": 1001}), ("ratelimit", {})],
)
def test_rejects_what_no_job_can_have(mechanism, options):
    arguments = {"memory_limit_mib": 4096, "share_milli": 250, **options}
    with pytest.raises(ValueError):
        job_environment(mechanism, **arguments)


@given(limit=st.integers(1, 10**6), share=st.integers(1, 1000), mechanism=st.sampled_from(["hami-core", "mps"]))
def test_values_read_back_as_the_limit(limit, share, mechanism):
    env = job_environment(mechanism, memory_limit_mib=limit, share_milli=share).env
    if mechanism == "hami-core":
        assert env["CUDA_DEVICE_MEMORY_LIMIT"] == f"{limit}m"
    else:
        assert env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == f"0={limit}M"
        assert 0 < float(env["XLA_PYTHON_CLIENT_MEM_FRACTION"]) <= 1
    assert int(env["RUNAI_LITE_GPU_MEMORY_LIMIT_MIB"]) == limit
    assert abs(float(env["RUNAI_LITE_GPU_MEMORY_FRACTION"]) - share / 1000) < 0.0005


def test_allocation_of_a_fraction_uses_its_memory_limit():
    allocation = Allocation(kind="fraction", node="n", gpu_indices=(0,), share_milli=250, memory_mib=10_000)
    enforcement = for_allocation(allocation, "mps", gpu_memory_mib=40_960)
    assert enforcement.limit_mib == 10_000
    assert enforcement.env["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"] == "0=10000M"


def test_allocation_of_a_fraction_without_memory_takes_its_share_of_the_gpu():
    allocation = Allocation(kind="fraction", node="n", gpu_indices=(0,), share_milli=250)
    assert for_allocation(allocation, "framework", gpu_memory_mib=40_960).limit_mib == 10_240
    with pytest.raises(ValueError):
        for_allocation(allocation, "framework")


def test_allocation_of_a_mig_partition_is_held_by_hardware():
    allocation = Allocation(kind="mig", node="n", gpu_indices=(0,), share_milli=143, memory_mib=4864,
                            mig_profile="1g.5gb", mig_uuid="MIG-x")
    enforcement = for_allocation(allocation, "none")
    assert enforcement.mechanism is Mechanism.MIG and not enforcement.advisory
    assert enforcement.env == {} and enforcement.limit_mib == 4864
    assert "1g.5gb" in enforcement.description


def test_allocation_of_whole_gpus_needs_no_enforcement():
    assert for_allocation(Allocation(kind="gpu", node="n", gpu_indices=(0, 1)), "hami-core") is None


def test_hook_ships_with_the_package():
    files = hook_files()
    assert list(files) == ["sitecustomize.py"]
    assert (HOOK_DIR / "sitecustomize.py").read_text() == files["sitecustomize.py"]


def test_hook_reads_the_variables_the_environment_sets():
    tree = ast.parse((HOOK_DIR / "sitecustomize.py").read_text())
    constants = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and isinstance(node.targets[0], ast.Name)
    }
    assert constants["_LIMIT_VAR"] == environment_module.HOOK_LIMIT_VAR
    assert constants["_FRACTION_VAR"] == environment_module.HOOK_FRACTION_VAR
    assert constants["_ENFORCEMENT_VAR"] == environment_module.HOOK_ENFORCEMENT_VAR


def test_enforcement_imports_only_lower_layers():
    package = Path(environment_module.__file__).parent
    forbidden = ("runai_lite.backends", "runai_lite.cli", "runai_lite.scheduler", "runai_lite.agent",
                 "kubernetes", "pynvml", "sqlite3", "torch", "jax")
    for source in package.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                level_prefix = "runai_lite." if node.level >= 2 else ""
                names = [level_prefix + (node.module or "")]
            for name in names:
                assert not name.startswith(forbidden), f"{source.name} imports {name}"
