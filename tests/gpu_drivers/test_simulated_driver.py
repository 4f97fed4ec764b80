"""The simulated driver: catalog rules, persistence, stable UUIDs, processes, faults, locking."""

import json
import multiprocessing
import os
import stat
import subprocess
import sys

import pytest

from runai_lite.errors import OperationalError, UserError
from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.driver import DriverError, MigMode
from runai_lite.gpu.mig_layout import Placed, is_valid
from runai_lite.gpu.simulated import FAULTS_FILE, STATE_FILE, SimulatedDriver


@pytest.fixture
def a100(tmp_path):
    return SimulatedDriver(tmp_path / "gpu", "A100-SXM4-40GB:1:mig-on", faults="")


def codes_of(call, *args):
    with pytest.raises(DriverError) as caught:
        call(*args)
    return caught.value.code


def test_gpus_are_reported_simulated_with_stable_uuids(tmp_path):
    first = SimulatedDriver(tmp_path, "H100-SXM5-80GB:2:mig-on,T4:1", faults="")
    gpus = first.gpus()
    assert [(g.index, g.name, g.mig_capable, g.mig_enabled) for g in gpus] == [
        (0, "H100-SXM5-80GB", True, True), (1, "H100-SXM5-80GB", True, True), (2, "T4", False, False)
    ]
    assert all(g.simulated for g in gpus) and first.simulated
    assert all(g.uuid.startswith("GPU-") for g in gpus) and len({g.uuid for g in gpus}) == 3
    assert gpus[0].memory_mib == default_catalog().get("H100-SXM5-80GB").memory_mib
    assert SimulatedDriver(tmp_path, faults="").gpus() == gpus  # reopened: same machine


def test_two_machines_get_different_uuids(tmp_path):
    one = SimulatedDriver(tmp_path / "one", "A100-SXM4-40GB:1:mig-on", faults="").gpus()[0].uuid
    two = SimulatedDriver(tmp_path / "two", "A100-SXM4-40GB:1:mig-on", faults="").gpus()[0].uuid
    assert one != two


def test_create_at_explicit_placement_and_list(a100):
    made = a100.create_mig(0, "3g.20gb", 4)
    assert (made.profile, made.start, made.size, made.profile_id, made.memory_mib) == ("3g.20gb", 4, 4, 9, 19968)
    assert made.uuid.startswith("MIG-") and made.complete
    assert a100.mig_instances(0) == [made]
    small = a100.create_mig(0, "1g.5gb", 0)
    assert [m.start for m in a100.mig_instances(0)] == [0, 4]
    assert small.gi_id != made.gi_id


def test_overlap_and_instance_cap_are_insufficient_resources_and_change_nothing(a100):
    a100.create_mig(0, "3g.20gb", 0)
    with pytest.raises(DriverError) as caught:
        a100.create_mig(0, "2g.10gb", 2)
    assert caught.value.code == "insufficient-resources" and "overlap" in caught.value.message
    assert caught.value.retryable
    a100.create_mig(0, "1g.5gb+me", 4)
    with pytest.raises(DriverError, match="at most 1") as caught:
        a100.create_mig(0, "1g.5gb+me", 5)
    assert caught.value.code == "insufficient-resources"
    assert [(m.profile, m.start) for m in a100.mig_instances(0)] == [("3g.20gb", 0), ("1g.5gb+me", 4)]


def test_compute_slices_are_a_limit(tmp_path):
    # A30: 4 compute and 4 memory slices; 2g.12gb at 0 and 2 use all compute
    a30 = SimulatedDriver(tmp_path, "A30:1:mig-on", faults="")
    a30.create_mig(0, "2g.12gb", 0)
    a30.create_mig(0, "2g.12gb+me", 2)
    assert codes_of(a30.create_mig, 0, "1g.6gb", 1) == "insufficient-resources"


def test_invalid_requests_say_what_would_be_right(tmp_path):
    driver = SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on,T4:1,A100-SXM4-40GB:1:mig-off", faults="")
    with pytest.raises(DriverError, match="valid starts: 0, 4") as caught:
        driver.create_mig(0, "3g.20gb", 2)
    assert caught.value.code == "not-supported" and not caught.value.retryable
    with pytest.raises(DriverError) as caught:
        driver.create_mig(0, "9g.99gb", 0)
    assert caught.value.code == "not-supported" and "3g.20gb" in caught.value.hint
    assert codes_of(driver.create_mig, 1, "1g.5gb", 0) == "not-supported"
    with pytest.raises(DriverError) as caught:
        driver.create_mig(2, "1g.5gb", 0)
    assert caught.value.code == "mig-disabled" and "mig-off" in caught.value.hint
    assert codes_of(driver.create_mig, 7, "1g.5gb", 0) == "not-found"
    assert driver.mig_instances(2) == []
    assert driver.mig_mode(2) == MigMode(current=False, pending=False)
    assert driver.mig_mode(0) == MigMode(current=True, pending=True)
    assert codes_of(driver.mig_mode, 1) == "not-supported"


def test_destroy_is_idempotent_and_a_recreated_instance_gets_a_new_uuid(a100):
    made = a100.create_mig(0, "2g.10gb", 2)
    a100.destroy_mig(0, made.gi_id)
    a100.destroy_mig(0, made.gi_id)
    assert a100.mig_instances(0) == []
    again = a100.create_mig(0, "2g.10gb", 2)
    assert again.uuid != made.uuid


def test_state_survives_reopening_and_has_private_modes(tmp_path):
    state_dir = tmp_path / "home" / "gpu"
    made = SimulatedDriver(state_dir, "A100-SXM4-40GB:1:mig-on", faults="").create_mig(0, "1g.10gb", 6)
    assert SimulatedDriver(state_dir, faults="").mig_instances(0) == [made]
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    for name in os.listdir(state_dir):
        assert stat.S_IMODE((state_dir / name).stat().st_mode) == 0o600, name


def test_redeclaring_keeps_instances_of_unchanged_gpus_only(tmp_path):
    driver = SimulatedDriver(tmp_path, "A100-SXM4-40GB:2:mig-on", faults="")
    kept = driver.create_mig(0, "7g.40gb", 0)
    driver.create_mig(1, "7g.40gb", 0)
    uuids = [g.uuid for g in driver.gpus()]
    driver.declare("A100-SXM4-40GB:1:mig-on,H100-SXM5-80GB:1:mig-on")
    assert driver.mig_instances(0) == [kept]
    assert driver.mig_instances(1) == []
    assert driver.gpus()[0].uuid == uuids[0] and driver.gpus()[1].uuid != uuids[1]


def test_without_a_declaration_it_says_how_to_declare(tmp_path):
    assert not SimulatedDriver.is_declared(tmp_path)
    with pytest.raises(OperationalError, match="runai-adm local init --simulate"):
        SimulatedDriver(tmp_path)
    with pytest.raises(UserError):
        SimulatedDriver(tmp_path, "A100:banana")
    assert not SimulatedDriver.is_declared(tmp_path)  # a bad spec changes nothing


def test_unreadable_state_is_an_operational_error(tmp_path):
    SimulatedDriver(tmp_path, "T4:1", faults="")
    (tmp_path / STATE_FILE).write_text("{not json")
    with pytest.raises(OperationalError, match="unreadable"):
        SimulatedDriver(tmp_path, faults="").gpus()


# ------------------------------------------------------------------------------------------------
# Processes


def test_registered_live_process_blocks_destroy_until_unregistered(a100):
    made = a100.create_mig(0, "3g.20gb", 0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        a100.register_process(made.uuid, child.pid)
        assert a100.processes_on(made.uuid) == [child.pid]
        assert a100.processes_on(a100.gpus()[0].uuid) == [child.pid]  # the parent GPU sees it too
        with pytest.raises(DriverError) as caught:
            a100.destroy_mig(0, made.gi_id)
        assert caught.value.code == "in-use" and str(child.pid) in caught.value.message
        a100.unregister_process(made.uuid, child.pid)
        assert a100.processes_on(made.uuid) == []
        a100.destroy_mig(0, made.gi_id)
    finally:
        child.kill()
        child.wait()


def test_exited_or_recycled_processes_do_not_count(a100, tmp_path):
    made = a100.create_mig(0, "1g.5gb", 3)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    a100.register_process(made.uuid, child.pid)
    assert a100.processes_on(made.uuid) == []
    a100.register_process(made.uuid, os.getpid())
    assert a100.processes_on(made.uuid) == [os.getpid()]
    # the same PID with another start time is another process (the PID was recycled)
    path = tmp_path / "gpu" / STATE_FILE
    state = json.loads(path.read_text())
    for entry in state["processes"][made.uuid]:
        entry["started"] = "1"
    path.write_text(json.dumps(state))
    assert a100.processes_on(made.uuid) == []
    a100.destroy_mig(0, made.gi_id)


def test_processes_on_a_whole_simulated_gpu(tmp_path):
    driver = SimulatedDriver(tmp_path, "T4:1", faults="")
    uuid = driver.gpus()[0].uuid
    assert driver.processes_on(uuid) == []
    driver.register_process(uuid, os.getpid())
    assert driver.processes_on(uuid) == [os.getpid()]
    driver.unregister_process(uuid)
    assert driver.processes_on(uuid) == []


# ------------------------------------------------------------------------------------------------
# Faults


def test_stored_faults_fail_the_next_calls_of_any_process_and_change_nothing(tmp_path):
    SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="").set_faults("create:insufficient-resources:x1,destroy:in-use:x1")
    daemon = SimulatedDriver(tmp_path, faults="")  # another process's view of the same machine
    with pytest.raises(DriverError, match="simulated fault") as caught:
        daemon.create_mig(0, "1g.5gb", 0)
    assert caught.value.code == "insufficient-resources"
    assert daemon.mig_instances(0) == []
    made = daemon.create_mig(0, "1g.5gb", 0)
    assert codes_of(daemon.destroy_mig, 0, made.gi_id) == "in-use"
    assert daemon.mig_instances(0) == [made]
    daemon.destroy_mig(0, made.gi_id)
    assert daemon.faults() == ""


@pytest.mark.parametrize("code", ["insufficient-resources", "in-use", "timeout", "unknown"])
def test_process_faults_inject_each_nvml_error(tmp_path, code):
    SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="")
    made = SimulatedDriver(tmp_path, faults="").create_mig(0, "1g.5gb", 0)
    faulty = SimulatedDriver(tmp_path, faults=f"any:{code}:1")
    assert codes_of(faulty.create_mig, 0, "1g.5gb", 1) == code
    assert codes_of(faulty.destroy_mig, 0, made.gi_id) == code
    assert SimulatedDriver(tmp_path, faults="").mig_instances(0) == [made]


def test_faults_come_from_the_environment(tmp_path, monkeypatch):
    SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="")
    monkeypatch.setenv("RUNAI_LITE_SIM_FAULTS", "create:timeout:x2")
    driver = SimulatedDriver(tmp_path)
    assert codes_of(driver.create_mig, 0, "1g.5gb", 0) == "timeout"
    assert codes_of(driver.create_mig, 0, "1g.5gb", 0) == "timeout"
    driver.create_mig(0, "1g.5gb", 0)


def test_a_bad_fault_spec_is_refused(tmp_path):
    driver = SimulatedDriver(tmp_path, "T4:1", faults="")
    with pytest.raises(UserError):
        driver.set_faults("create:in-use:2")
    assert driver.faults() == ""


# ------------------------------------------------------------------------------------------------
# Several processes at once


def _create_everywhere(state_dir, profile, out):
    driver = SimulatedDriver(state_dir, faults="")
    made = []
    for start in driver.model(0).profile(profile).starts:
        try:
            made.append(driver.create_mig(0, profile, start).gi_id)
        except DriverError as error:
            assert error.code == "insufficient-resources"
    out.put(made)


def test_concurrent_processes_never_double_book_or_lose_an_instance(tmp_path):
    SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="")
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    workers = [
        context.Process(target=_create_everywhere, args=(tmp_path, profile, out))
        for profile in ["1g.5gb", "2g.10gb", "1g.10gb", "3g.20gb"] * 2
    ]
    for worker in workers:
        worker.start()
    made = [gi for _ in workers for gi in out.get(timeout=60)]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    driver = SimulatedDriver(tmp_path, faults="")
    instances = driver.mig_instances(0)
    assert sorted(made) == sorted(m.gi_id for m in instances)
    assert is_valid(driver.model(0), [Placed(m.start, m.profile) for m in instances])
    assert len({m.uuid for m in instances}) == len(instances)


def test_after_faults_take_effect_before_reporting_the_error(a100):
    a100.set_faults("create:timeout:x1:after,destroy:unknown:x1:after")
    assert codes_of(a100.create_mig, 0, "3g.20gb", 0) == "timeout"
    [made] = a100.mig_instances(0)  # NVML acted; only the answer was lost
    assert (made.profile, made.start) == ("3g.20gb", 0)
    assert codes_of(a100.destroy_mig, 0, made.gi_id) == "unknown"
    assert a100.mig_instances(0) == []


def _churn(state_dir):
    driver = SimulatedDriver(state_dir, faults="")
    while True:
        for start in range(7):
            try:
                driver.create_mig(0, "1g.5gb", start)
            except DriverError:
                pass
        for made in driver.mig_instances(0):
            driver.destroy_mig(0, made.gi_id)


def test_a_process_killed_mid_write_never_corrupts_the_state(tmp_path):
    SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="")
    context = multiprocessing.get_context("fork")
    for _ in range(5):
        worker = context.Process(target=_churn, args=(tmp_path,))
        worker.start()
        worker.join(timeout=0.2)
        worker.kill()
        worker.join()
        driver = SimulatedDriver(tmp_path, faults="")
        instances = driver.mig_instances(0)
        assert is_valid(driver.model(0), [Placed(m.start, m.profile) for m in instances])
    for made in driver.mig_instances(0):
        driver.destroy_mig(0, made.gi_id)
    driver.create_mig(0, "7g.40gb", 0)  # the next write also sweeps temporary files a kill left
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_a_fault_file_in_the_state_dir_is_taken_in_once(tmp_path):
    driver = SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-on", faults="")
    (tmp_path / FAULTS_FILE).write_text("create:in-use:x1\n")
    assert codes_of(driver.create_mig, 0, "1g.5gb", 0) == "in-use"
    assert not (tmp_path / FAULTS_FILE).exists()
    driver.create_mig(0, "1g.5gb", 0)
    (tmp_path / FAULTS_FILE).write_text("create:sometimes")
    with pytest.raises(DriverError, match="ignored the fault file"):
        driver.create_mig(0, "1g.5gb", 1)
    assert driver.create_mig(0, "1g.5gb", 1).start == 1
