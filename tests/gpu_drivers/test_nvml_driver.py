"""The NVML driver against a fake NVML, two ways (every test runs with both):

- `fake-pynvml`: the driver talks to `tests/fakes/fake_pynvml.FakeNvml` in place of the pynvml module;
- `real-pynvml`: the driver talks to the real pynvml module, whose C library is replaced by
  `tests/fakes/fake_libnvml` serving the same fake GPUs, so pynvml's own wrappers, calling
  conventions and error classes are exercised.
"""

import ctypes
import io
import inspect
import subprocess
import sys

import pynvml
import pytest

from runai_lite.agent import reconcile
from runai_lite.errors import OperationalError
from runai_lite.gpu import nvml as nvml_module
from runai_lite.gpu.driver import DriverError, MigMode
from runai_lite.gpu.drivers import open_driver
from runai_lite.gpu.nvml import NvmlDriver
from tests.fakes import fake_libnvml, fake_pynvml
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

_bindings = None  # FakeNvml → the module the driver is given; set per test by `bindings`


@pytest.fixture(autouse=True, params=["fake-pynvml", "real-pynvml"])
def bindings(request, monkeypatch):
    global _bindings
    if request.param == "fake-pynvml":
        _bindings = lambda fake: fake  # noqa: E731
    else:
        _bindings = lambda fake: fake_libnvml.install(monkeypatch, fake)  # noqa: E731
    yield request.param
    _bindings = None


def make(*gpus, privileged=True):
    fake = FakeNvml(list(gpus) or [FakeGpu.from_catalog("A100-SXM4-40GB")], privileged=privileged)
    return fake, NvmlDriver(nvml=_bindings(fake))


def code_of(call, *args):
    with pytest.raises(DriverError) as caught:
        call(*args)
    return caught.value


# ------------------------------------------------------------------------------------------------
# The fake is faithful to pynvml


def test_fake_error_classes_are_made_like_pynvmls():
    for code, real_class in pynvml.NVMLError._valClassMapping.items():
        fake_class = getattr(fake_pynvml, real_class.__name__)
        error = fake_pynvml.NVMLError(code)
        assert type(error) is fake_class and error.value == code
        assert isinstance(fake_class(), fake_pynvml.NVMLError) and fake_class().value == code
    assert fake_pynvml.NVMLError_InsufficientResources.__name__ == "NVMLError_InsufficientResources"


def test_fake_functions_have_pynvmls_signatures():
    fake = FakeNvml([])
    names = [n for n in dir(FakeNvml) if n.startswith("nvml")]
    assert len(names) > 20
    for name in names:
        real = inspect.signature(getattr(pynvml, name))
        assert list(inspect.signature(getattr(fake, name)).parameters) == list(real.parameters), name


def test_fake_insists_on_pynvmls_calling_conventions():
    fake = FakeNvml([FakeGpu.from_catalog("A100-SXM4-40GB", id_offset=100)])
    fake.nvmlInit()
    device = fake.nvmlDeviceGetHandleByIndex(0)
    placement = fake.c_nvmlGpuInstancePlacement_t(0, 4)
    with pytest.raises(TypeError, match="by reference"):
        fake.nvmlDeviceCreateGpuInstanceWithPlacement(device, 109, placement)
    # a profile index where an ID belongs is an invalid argument
    with pytest.raises(fake_pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceCreateGpuInstanceWithPlacement(device, pynvml.NVML_GPU_INSTANCE_PROFILE_3_SLICE, ctypes.byref(placement))
    small = (fake.c_nvmlGpuInstancePlacement_t * 2)()
    count = ctypes.c_uint(2)
    with pytest.raises(fake_pynvml.NVMLError_InsufficientSize):
        fake.nvmlDeviceGetGpuInstancePossiblePlacements(device, 119, small, ctypes.byref(count))
    assert count.value == 7


# ------------------------------------------------------------------------------------------------
# Discovery and the profile table


def test_gpus_report_name_uuid_memory_and_mig_mode():
    plain = FakeGpu.from_catalog("T4")
    off = FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False, mig_pending=True)
    fake, driver = make(FakeGpu.from_catalog("H100-SXM5-80GB"), plain, off)
    gpus = driver.gpus()
    assert [(g.index, g.name, g.mig_capable, g.mig_enabled, g.simulated) for g in gpus] == [
        (0, "NVIDIA H100 80GB HBM3", True, True, False),
        (1, "Tesla T4", False, False, False),
        (2, "NVIDIA A100-SXM4-40GB", True, False, False),
    ]
    assert gpus[1].uuid == plain.uuid and gpus[0].memory_mib == fake.gpus[0].memory_mib
    assert driver.mig_mode(2) == MigMode(current=False, pending=True)
    assert code_of(driver.mig_mode, 1).code == "not-supported"
    driver.gpus()
    assert fake.calls.count("nvmlDeviceGetHandleByIndex") == 3  # handles are cached


def test_profile_table_takes_nvmls_numbers_and_the_catalogs_names():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB", memory_drift_mb=-128, id_offset=100))
    model = driver.model(0)
    assert (model.name, model.memory_slices, model.compute_slices, model.verified) == ("A100-SXM4-40GB", 8, 7, True)
    by_name = {p.name: p for p in model.profiles}
    assert set(by_name) == {"1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"}
    three = by_name["3g.20gb"]
    assert (three.id, three.memory_mib, three.starts, three.memory_slices, three.max_instances) == (109, 19968 - 128, (0, 4), 4, 2)
    assert by_name["1g.10gb"].starts == (0, 2, 4, 6) and by_name["1g.10gb"].compute == 1
    assert by_name["1g.5gb+me"].max_instances == 1
    made = driver.create_mig(0, "3g.20gb", 4)
    assert made.profile_id == 109 and fake.instances(0) == [("MIG 3g.20gb", 4, 1)]


def test_unknown_gpu_names_profiles_from_nvml():
    future = FakeGpu.from_catalog("H100-SXM5-80GB", name="NVIDIA Z100 Future")
    bare = FakeGpu.from_catalog("H100-SXM5-80GB", name="NVIDIA Z200", v2_names=False)
    _, driver = make(future, bare)
    assert driver.model(0).name == "Z100 Future"
    assert {p.name for p in driver.model(0).profiles} >= {"1g.10gb", "1g.10gb+me", "3g.40gb", "7g.80gb"}
    names = {p.name for p in driver.model(1).profiles}
    assert {"1g.10gb", "1g.10gb+me", "2g.20gb", "3g.40gb", "7g.80gb"} <= names
    assert driver.model(1).profile("3g.40gb").starts == (0, 4)


def test_unprivileged_user_gets_catalog_placements_and_a_permission_hint():
    fake, driver = make(privileged=False)
    assert driver.model(0).profile("3g.20gb").starts == (0, 4)
    error = code_of(driver.mig_instances, 0)
    assert error.code == "no-permission" and "/proc/driver/nvidia/capabilities/mig/config" in error.hint
    assert code_of(driver.create_mig, 0, "1g.5gb", 0).code == "no-permission"
    assert not error.retryable


def test_non_mig_gpu_has_a_plain_model():
    _, driver = make(FakeGpu.from_catalog("T4"))
    model = driver.model(0)
    assert (model.name, model.mig_capable) == ("T4", False)
    assert driver.mig_instances(0) == []
    assert code_of(driver.create_mig, 0, "1g.5gb", 0).code == "not-supported"


# ------------------------------------------------------------------------------------------------
# Creating, listing, destroying


def test_create_makes_a_spanning_compute_instance_and_reports_its_mig_uuid():
    fake, driver = make()
    made = driver.create_mig(0, "2g.10gb", 2)
    assert (made.profile, made.start, made.size, made.ci_id, made.complete) == ("2g.10gb", 2, 2, 0, True)
    assert made.uuid.startswith("MIG-")
    assert fake.nvmlDeviceGetUUID(fake.nvmlDeviceGetHandleByUUID(made.uuid)) == made.uuid
    assert fake.instances(0) == [("MIG 2g.10gb", 2, 1)]
    assert driver.mig_instances(0) == [made]


def test_refusals_are_translated_with_hints():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB"), FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False))
    driver.create_mig(0, "3g.20gb", 0)
    overlap = code_of(driver.create_mig, 0, "2g.10gb", 2)
    assert overlap.code == "insufficient-resources" and "Insufficient Resources" in overlap.message and overlap.hint
    driver.create_mig(0, "1g.5gb+me", 4)
    assert code_of(driver.create_mig, 0, "1g.5gb+me", 5).code == "insufficient-resources"
    off = code_of(driver.create_mig, 1, "1g.5gb", 0)
    assert off.code == "mig-disabled" and "nvidia-smi -i 1 -mig 1" in off.hint
    assert code_of(driver.create_mig, 0, "3g.20gb", 2).code == "not-supported"
    assert "valid profiles" in code_of(driver.create_mig, 0, "8g.80gb", 0).hint


def test_pending_mig_mode_hints_at_a_reset():
    _, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False, mig_pending=True))
    assert "reset" in code_of(driver.create_mig, 0, "1g.5gb", 0).hint


@pytest.mark.parametrize(
    ("nvml_code", "code", "retryable"),
    [
        (pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES, "insufficient-resources", True),
        (pynvml.NVML_ERROR_IN_USE, "in-use", True),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no-permission", False),
        (pynvml.NVML_ERROR_NOT_SUPPORTED, "not-supported", False),
        (pynvml.NVML_ERROR_NOT_FOUND, "not-found", False),
        (pynvml.NVML_ERROR_TIMEOUT, "timeout", True),
        (pynvml.NVML_ERROR_UNKNOWN, "unknown", True),
    ],
)
def test_nvml_errors_map_to_driver_error_codes(nvml_code, code, retryable):
    fake, driver = make()
    driver.model(0)
    fake.fail_next("nvmlDeviceCreateGpuInstanceWithPlacement", nvml_code)
    error = code_of(driver.create_mig, 0, "1g.5gb", 0)
    assert (error.code, error.retryable) == (code, retryable)
    assert "create 1g.5gb at slice 0 on GPU 0" in error.message
    assert fake.instances(0) == []


def test_a_failed_compute_instance_rolls_the_gpu_instance_back():
    fake, driver = make()
    fake.fail_next("nvmlGpuInstanceCreateComputeInstance", pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES)
    assert code_of(driver.create_mig, 0, "4g.20gb", 0).code == "insufficient-resources"
    assert fake.instances(0) == []
    driver.create_mig(0, "4g.20gb", 0)


def test_listing_reports_a_gpu_instance_without_compute_instance_as_incomplete():
    fake, driver = make()
    whole = driver.create_mig(0, "3g.20gb", 4)
    fake.add_bare_gpu_instance(0, 14, 0)
    listed = driver.mig_instances(0)
    assert [(m.profile, m.start, m.complete, m.ci_id) for m in listed] == [("2g.10gb", 0, False, -1), ("3g.20gb", 4, True, 0)]
    assert listed[1] == whole


def test_listing_with_mig_mode_off_is_empty():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False))
    assert driver.mig_instances(0) == []
    driver.destroy_mig(0, 3)  # nothing can exist: done


def test_destroy_is_idempotent_and_finishes_a_partial_teardown():
    fake, driver = make()
    made = driver.create_mig(0, "7g.40gb", 0)
    fake.fail_next("nvmlGpuInstanceDestroy", pynvml.NVML_ERROR_UNKNOWN)
    assert code_of(driver.destroy_mig, 0, made.gi_id).code == "unknown"
    assert fake.instances(0) == [("MIG 7g.40gb", 0, 0)]  # compute instance gone, GPU instance left
    driver.destroy_mig(0, made.gi_id)
    driver.destroy_mig(0, made.gi_id)
    assert fake.instances(0) == [] and driver.mig_instances(0) == []


def test_destroy_refuses_while_processes_run():
    fake, driver = make()
    made = driver.create_mig(0, "1g.5gb", 3)
    fake.run_process(made.uuid, 4242)
    error = code_of(driver.destroy_mig, 0, made.gi_id)
    assert error.code == "in-use" and "In use by another client" in error.message
    assert driver.mig_instances(0) == [made]
    fake.stop_processes(made.uuid)
    driver.destroy_mig(0, made.gi_id)


# ------------------------------------------------------------------------------------------------
# Processes


def test_processes_on_mig_and_whole_devices():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB"), FakeGpu.from_catalog("T4"))
    made = driver.create_mig(0, "1g.5gb", 0)
    assert driver.processes_on(made.uuid) == []
    fake.run_process(made.uuid, 11)
    fake.run_process(made.uuid, 12)
    assert driver.processes_on(made.uuid) == [11, 12]
    fake.run_process(fake.gpus[1].uuid, 7)
    assert driver.processes_on(fake.gpus[1].uuid) == [7]
    assert driver.processes_on("MIG-00000000-0000-0000-0000-000000000000") == []


def test_process_memory_reports_each_processes_gpu_memory_where_nvml_says():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB"))
    made = driver.create_mig(0, "1g.5gb", 0)
    fake.run_process(made.uuid, 11, used_bytes=300 * 2**20)
    fake.run_process(made.uuid, 12, used_bytes=2**64 - 1)  # NVML_VALUE_NOT_AVAILABLE
    assert driver.process_memory(made.uuid) == {11: 300, 12: None}
    assert driver.process_memory("MIG-00000000-0000-0000-0000-000000000000") == {}
    fake.process_query_error = pynvml.NVML_ERROR_UNKNOWN
    assert code_of(driver.process_memory, made.uuid).code == "unknown"


def test_a_failed_process_query_raises_so_callers_count_it_busy():
    fake, driver = make()
    made = driver.create_mig(0, "1g.5gb", 0)
    fake.process_query_error = pynvml.NVML_ERROR_UNKNOWN
    assert code_of(driver.processes_on, made.uuid).code == "unknown"
    result = reconcile(driver, {0: []})
    assert [e.code for e in result.errors] == ["in-use"]
    assert driver.mig_instances(0) == [made]


# ------------------------------------------------------------------------------------------------
# With the agent, start-up and shut-down


def test_reconcile_through_nvml_repairs_protects_and_converges():
    fake, driver = make()
    fake.add_bare_gpu_instance(0, 9, 0)  # a crash left a 3g.20gb without compute instance
    busy = driver.create_mig(0, "1g.5gb", 4)
    fake.run_process(busy.uuid, 99)
    result = reconcile(driver, {0: [("3g.20gb", 0), ("1g.5gb", 6)]})
    assert [(e.action, e.code, e.pids) for e in result.errors] == [("destroy", "in-use", (99,))]
    assert [(i.profile, i.start) for i in result.gpu(0).instances] == [("3g.20gb", 0), ("1g.5gb", 4), ("1g.5gb", 6)]
    assert all(i.uuid for i in result.gpu(0).instances)
    fake.stop_processes(busy.uuid)
    again = reconcile(driver, {0: [("3g.20gb", 0), ("1g.5gb", 6)]})
    assert again.ok and [(i.profile, i.start) for i in again.gpu(0).instances] == [("3g.20gb", 0), ("1g.5gb", 6)]
    assert fake.instances(0) == [("MIG 1g.5gb", 6, 1), ("MIG 3g.20gb", 0, 1)]


def test_close_shuts_nvml_down_once():
    fake, driver = make()
    driver.close()
    driver.close()
    assert fake.calls.count("nvmlShutdown") == 1


def test_missing_driver_is_a_driver_error():
    fake = FakeNvml([])
    fake.driver_missing = True
    error = code_of(NvmlDriver, _bindings(fake))
    assert error.code == "not-found" and "NVML Shared Library Not Found" in error.message


def test_open_driver_picks_simulated_then_nvml_then_says_how_to_proceed(tmp_path, monkeypatch):
    fakes = {"nvml": FakeNvml([FakeGpu.from_catalog("A100-SXM4-40GB")])}
    monkeypatch.setattr(nvml_module, "_import_pynvml", lambda: _bindings(fakes["nvml"]))
    assert isinstance(open_driver(tmp_path / "a"), NvmlDriver)
    fakes["nvml"] = FakeNvml([])
    with pytest.raises(OperationalError, match="NVML found no GPU") as caught:
        open_driver(tmp_path / "a")
    assert "runai-adm local init --simulate A100-SXM4-40GB:1" in caught.value.hint
    fakes["nvml"].driver_missing = True
    with pytest.raises(OperationalError, match="no NVIDIA GPU/driver found"):
        open_driver(tmp_path / "a")
    simulated = open_driver(tmp_path / "b", simulate="T4:2")
    assert simulated.simulated and len(simulated.gpus()) == 2
    assert open_driver(tmp_path / "b").gpus() == simulated.gpus()


def test_importing_the_drivers_and_agent_does_not_load_pynvml():
    code = "import sys, runai_lite.gpu.nvml, runai_lite.gpu.drivers, runai_lite.agent; sys.exit('pynvml' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_the_probe_script_reads_everything_and_changes_nothing():
    from benchmarks.nvml_probe import probe

    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB"), FakeGpu.from_catalog("T4"))
    made = driver.create_mig(0, "3g.20gb", 4)
    fake.calls.clear()
    out = io.StringIO()
    probe(driver, out)
    text = out.getvalue()
    assert "GPU 0: NVIDIA A100-SXM4-40GB" in text and "MIG current=on pending=on" in text
    assert "3g.20gb" in text and "{0,4}:4" in text and made.uuid in text
    assert "GPU 1: Tesla T4" in text and "MIG not supported" in text
    assert not [c for c in fake.calls if "Create" in c or "Destroy" in c or "Set" in c]
    unprivileged, driver = make(privileged=False)
    out = io.StringIO()
    probe(driver, out)
    assert "cannot list (no-permission)" in out.getvalue()


def test_profiles_are_read_again_once_mig_is_switched_on():
    fake, driver = make(FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False, profiles_need_mig_on=True))
    assert not driver.model(0).mig_capable
    fake.gpus[0].mig_current = True  # an administrator enabled MIG mode and reset the GPU
    assert driver.model(0).profile("3g.20gb").starts == (0, 4)
    assert driver.create_mig(0, "3g.20gb", 0).complete


def test_process_queries_fall_back_to_v2_on_an_older_driver():
    fake, driver = make()
    made = driver.create_mig(0, "1g.5gb", 0)
    fake.run_process(made.uuid, 31)
    fake.older_driver = True
    assert driver.processes_on(made.uuid) == [31]


def test_the_real_flavour_goes_through_pynvmls_own_wrappers(bindings):
    fake, driver = make()
    driver.create_mig(0, "1g.5gb", 0)
    fake.run_process(driver.mig_instances(0)[0].uuid, 5)
    assert driver.processes_on(driver.mig_instances(0)[0].uuid) == [5]
    used = set(pynvml._nvmlGetFunctionPointer_cache)
    if bindings == "real-pynvml":
        assert {"nvmlDeviceCreateGpuInstanceWithPlacement", "nvmlGpuInstanceGetComputeInstanceProfileInfoV",
                "nvmlComputeInstanceGetInfo_v2", "nvmlDeviceGetComputeRunningProcesses_v3"} <= used
    else:
        assert not used & {"nvmlDeviceCreateGpuInstanceWithPlacement"}


def test_a_gpu_instance_split_into_smaller_compute_instances_is_not_mistaken_for_a_broken_one():
    fake, driver = make()
    gi_id = fake.add_bare_gpu_instance(0, 9, 4)  # an administrator's 3g.20gb ...
    gpu_instance = fake.nvmlDeviceGetGpuInstanceById(fake.nvmlDeviceGetHandleByIndex(0), gi_id)
    fake.nvmlGpuInstanceCreateComputeInstance(gpu_instance, pynvml.NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE)  # ... split
    [listed] = driver.mig_instances(0)
    assert listed.complete and listed.uuid.startswith("MIG-") and listed.ci_id == 0
    fake.run_process(listed.uuid, 77)
    result = reconcile(driver, {0: []})
    assert [(e.code, e.pids) for e in result.errors] == [("in-use", (77,))]
    fake.stop_processes(listed.uuid)
    assert reconcile(driver, {0: []}).ok and fake.instances(0) == []
