"""The MIG reconcile agent against the simulated driver."""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runai_lite.agent import DesiredInstance, reconcile
from runai_lite.gpu.catalog import default_catalog
from runai_lite.gpu.driver import DriverError
from runai_lite.gpu.mig_layout import find_layout
from runai_lite.gpu.simulated import SimulatedDriver


@pytest.fixture
def driver(tmp_path):
    return SimulatedDriver(tmp_path, "A100-SXM4-40GB:2:mig-on", faults="")


def layout(result, gpu=0):
    return [(i.profile, i.start) for i in result.gpu(gpu).instances]


def test_creates_the_desired_instances_at_their_placements(driver):
    result = reconcile(driver, {0: [("3g.20gb", 4), ("2g.10gb", 0), DesiredInstance(profile="1g.5gb", start=2)]})
    assert result.ok
    assert layout(result) == [("2g.10gb", 0), ("1g.5gb", 2), ("3g.20gb", 4)]
    gpu = result.gpu(0)
    assert {i.uuid for i in gpu.instances} == {m.uuid for m in driver.mig_instances(0)}
    assert [(i.start, i.size) for i in gpu.instances] == [(0, 2), (2, 1), (4, 4)]
    assert gpu.gpu_uuid == driver.gpus()[0].uuid and len(gpu.created) == 3


def test_is_idempotent(driver):
    desired = {0: [("3g.20gb", 0), ("3g.20gb", 4)], 1: [("7g.40gb", 0)]}
    first = reconcile(driver, desired)
    second = reconcile(driver, desired)
    assert second.ok
    assert all(not g.created and not g.destroyed for g in second.gpus)
    assert [g.instances for g in first.gpus] == [g.instances for g in second.gpus]


def test_destroys_before_creating_so_freed_slices_are_reused(driver):
    whole = driver.create_mig(0, "7g.40gb", 0)
    result = reconcile(driver, {0: [("3g.20gb", 0), ("3g.20gb", 4)]})
    assert result.ok
    assert [i.uuid for i in result.gpu(0).destroyed] == [whole.uuid]
    assert layout(result) == [("3g.20gb", 0), ("3g.20gb", 4)]


def test_never_destroys_an_instance_a_process_uses(driver):
    busy = driver.create_mig(0, "3g.20gb", 0)
    driver.register_process(busy.uuid, os.getpid())
    result = reconcile(driver, {0: [("7g.40gb", 0)]})
    [kept, blocked] = result.gpu(0).errors
    assert (kept.action, kept.code, kept.pids, kept.gi_id) == ("destroy", "in-use", (os.getpid(),), busy.gi_id)
    assert (blocked.action, blocked.code, blocked.profile) == ("create", "insufficient-resources", "7g.40gb")
    assert kept.retryable and blocked.retryable
    assert layout(result) == [("3g.20gb", 0)]
    driver.unregister_process(busy.uuid, os.getpid())
    assert layout(reconcile(driver, {0: [("7g.40gb", 0)]})) == [("7g.40gb", 0)]


def test_a_failed_process_query_counts_as_busy(driver):
    made = driver.create_mig(0, "1g.5gb", 0)

    class Blind(SimulatedDriver):
        def processes_on(self, uuid):
            raise DriverError("unknown", "NVML did not answer")

    blind = Blind(driver.state_dir, faults="")
    result = reconcile(blind, {0: []})
    assert [e.code for e in result.errors] == ["in-use"]
    assert "NVML did not answer" in result.errors[0].message
    assert driver.mig_instances(0) == [made]


def test_idle_partitions_not_required_are_kept_but_not_recreated(driver):
    idle = driver.create_mig(0, "2g.10gb", 0)
    desired = {0: [DesiredInstance(profile="2g.10gb", start=0, required=False), ("1g.5gb", 6, False), ("3g.20gb", 4)]}
    result = reconcile(driver, desired)
    assert result.ok
    assert layout(result) == [("2g.10gb", 0), ("3g.20gb", 4)]
    assert result.gpu(0).instances[0].uuid == idle.uuid


def test_an_empty_layout_clears_the_gpu_and_unnamed_gpus_are_left_alone(driver):
    driver.create_mig(0, "1g.5gb", 0)
    other = driver.create_mig(1, "1g.5gb", 0)
    result = reconcile(driver, {0: []})
    assert result.ok and layout(result) == []
    assert driver.mig_instances(1) == [other]


def test_gpus_may_be_named_by_uuid(driver):
    uuid = driver.gpus()[1].uuid
    result = reconcile(driver, {uuid: [("4g.20gb", 0)]})
    assert result.gpu(1).gpu_uuid == uuid and layout(result, 1) == [("4g.20gb", 0)]


def test_a_failure_on_one_gpu_does_not_stop_the_others(tmp_path):
    driver = SimulatedDriver(tmp_path, "A100-SXM4-40GB:1:mig-off,A100-SXM4-40GB:1:mig-on", faults="")
    result = reconcile(driver, {0: [("1g.5gb", 0)], 1: [("1g.5gb", 0)], 9: []})
    assert [(e.action, e.code) for e in result.gpu(0).errors] == [("create", "mig-disabled")]
    assert not result.gpu(0).errors[0].retryable
    assert layout(result, 1) == [("1g.5gb", 0)]
    assert [e.code for e in result.machine_errors] == ["not-found"]
    assert not result.ok and len(result.errors) == 2


def test_injected_faults_are_reported_and_a_later_pass_recovers(driver):
    stale = driver.create_mig(0, "7g.40gb", 0)
    driver.set_faults("create:timeout:x1,destroy:unknown:x1")
    first = reconcile(driver, {0: [("1g.5gb", 0)], 1: [("1g.5gb", 0)]})
    assert {(e.action, e.code) for e in first.errors} == {("destroy", "unknown"), ("create", "timeout")}
    assert all(e.retryable for e in first.errors)
    second = reconcile(driver, {0: [("1g.5gb", 0)], 1: [("1g.5gb", 0)]})
    assert second.ok and layout(second) == [("1g.5gb", 0)] and layout(second, 1) == [("1g.5gb", 0)]
    assert stale.uuid not in {i.uuid for i in second.gpu(0).instances}


def test_unknown_profiles_are_reported_not_raised(driver):
    result = reconcile(driver, {0: [("5g.99gb", 0), ("1g.5gb", 7)]})
    assert [e.code for e in result.errors] == ["not-supported", "not-supported"]


A100 = default_catalog().get("A100-SXM4-40GB")
PROFILES = [p.name for p in A100.profiles]


@st.composite
def layouts(draw):
    """A valid A100 layout: profiles placed by the layout algebra."""
    names = draw(st.lists(st.sampled_from(PROFILES), max_size=7))
    placed = None
    while placed is None:
        placed = find_layout(A100, names)
        names = names[:-1]
    return [(p.profile, p.start) for p in placed]


@settings(max_examples=40)  # each example re-partitions a GPU through the state file
@given(before=layouts(), after=layouts())
def test_any_valid_layout_reaches_any_other(tmp_path_factory, before, after):
    driver = SimulatedDriver(tmp_path_factory.mktemp("gpu"), "A100-SXM4-40GB:1:mig-on", faults="")
    assert reconcile(driver, {0: before}).ok
    result = reconcile(driver, {0: after})
    assert result.ok
    assert layout(result) == sorted(after, key=lambda item: item[1])


def test_a_failed_listing_after_changes_reports_what_is_known_not_nothing(driver):
    kept = driver.create_mig(0, "1g.5gb", 6)

    class ForgetfulAfterCreate(SimulatedDriver):
        def mig_instances(self, gpu_index):
            if self.created:
                raise DriverError("timeout", "NVML did not answer")
            return super().mig_instances(gpu_index)

        def create_mig(self, gpu_index, profile, start):
            self.created = True
            return super().create_mig(gpu_index, profile, start)

    forgetful = ForgetfulAfterCreate(driver.state_dir, faults="")
    forgetful.created = False
    result = reconcile(forgetful, {0: [("1g.5gb", 6), ("3g.20gb", 0)]})
    assert [(e.action, e.code) for e in result.errors] == [("list", "timeout")]
    assert layout(result) == [("3g.20gb", 0), ("1g.5gb", 6)]
    assert result.gpu(0).instances[1].uuid == kept.uuid


def test_nothing_to_do_lists_each_gpu_once(driver):
    reconcile(driver, {0: [("7g.40gb", 0)]})
    calls = []

    class Counting(SimulatedDriver):
        def mig_instances(self, gpu_index):
            calls.append(gpu_index)
            return super().mig_instances(gpu_index)

    assert reconcile(Counting(driver.state_dir, faults=""), {0: [("7g.40gb", 0)], 1: []}).ok
    assert calls == [0, 1]
