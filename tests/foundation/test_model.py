"""The shared types: requests, job types and statuses, specs, allocations, plans."""

import pytest
from pydantic import ValidationError

from runai_lite.model import (
    Allocation,
    AllocationKind,
    GpuRequest,
    JobSpec,
    JobStatus,
    JobType,
    MigSlot,
    Plan,
    RequestKind,
)


def test_a_request_has_exactly_one_form() -> None:
    with pytest.raises(ValidationError):
        GpuRequest()
    with pytest.raises(ValidationError):
        GpuRequest(gpus=1, fraction=0.5)
    with pytest.raises(ValidationError):
        GpuRequest(fraction=1.0)
    with pytest.raises(ValidationError):
        GpuRequest(memory_bytes=10)
    assert GpuRequest(memory_bytes=10 * 10**9).kind == "memory"
    assert GpuRequest(mig_profile="2g.10gb").describe() == "2g.10gb"
    assert GpuRequest(memory_bytes=10 * 10**9).describe() == "10GB"


def test_job_types_carry_run_ai_priorities() -> None:
    assert [t.priority for t in JobType] == [50, 75, 100]
    assert [t.preemptible for t in JobType] == [True, True, False]
    assert JobType.INTERACTIVE.priority_class == "build"


def test_running_and_preempted_jobs_hold_resources() -> None:
    assert {s for s in JobStatus if s.holds_resources} == {JobStatus.RUNNING, JobStatus.PREEMPTED}
    assert {s for s in JobStatus if s.terminal} == {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DELETED}


@pytest.mark.parametrize("name", ["Bad_Name", "-x", "x" * 64, ""])
def test_job_names_are_dns_labels(name: str) -> None:
    with pytest.raises(ValidationError):
        JobSpec(name=name, project="team-a", image="busybox")


def test_allocation_json_and_gpu_count() -> None:
    mig = Allocation(kind="mig", node="n", gpu_indices=(0,), share_milli=429, mig_profile="3g.20gb", mig_start=4,
                     mig_size=4)
    assert mig.to_json()["mig_placement"] == {"start": 4, "size": 4}
    assert Allocation(kind="gpu", node="n", gpu_indices=(0, 1)).gpus == 2
    assert Allocation(kind="fraction", node="n", gpu_indices=(1,), share_milli=250).gpus == 0.25


def test_plan_pending_reasons() -> None:
    plan = Plan(pending=(("a", "no GPU has 0.75 free"),))
    assert plan.pending_reason("a") == "no GPU has 0.75 free" and plan.pending_reason("b") is None


MIG = Allocation(kind="mig", node="n1", gpu_indices=(0,), gpu_uuids=("GPU-a",), share_milli=286, memory_mib=9856,
                 mig_profile="2g.10gb", mig_start=2, mig_size=2, mig_uuid="MIG-x")
HALF = Allocation(kind="fraction", node="n1", gpu_indices=(1,), gpu_uuids=("GPU-b",), share_milli=500,
                  memory_mib=20480)
WHOLE = Allocation(kind="gpu", node="n1", gpu_indices=(0, 1), gpu_uuids=("GPU-a", "GPU-b"))
NO_GPU = Allocation(kind="gpu", node="n1", gpu_indices=())


@pytest.mark.parametrize(("allocation", "with_node", "without_node"), [
    (MIG, "MIG 2g.10gb on n1 GPU 0 at slices 2-3", "MIG 2g.10gb on GPU 0 at slices 2-3"),
    (HALF, "0.5 of n1 GPU 1, 20GiB", "0.5 of GPU 1, 20GiB"),
    (WHOLE, "n1 GPU 0,1", "GPU 0,1"),
    (NO_GPU, "n1 (no GPU)", "no GPU"),
])
def test_an_allocation_is_worded_one_way(allocation: Allocation, with_node: str, without_node: str) -> None:
    assert (allocation.describe(), allocation.describe(node=False)) == (with_node, without_node)


def test_an_allocation_knows_its_mig_slot_and_its_devices() -> None:
    assert MIG.mig_slot == MigSlot("n1", 0, 2) and HALF.mig_slot is None and WHOLE.mig_slot is None
    assert (MIG.device_uuids, HALF.device_uuids, WHOLE.device_uuids) == (("MIG-x",), ("GPU-b",), ("GPU-a", "GPU-b"))
    assert MIG.model_copy(update={"mig_uuid": None}).device_uuids == ()  # not created yet: no device at all


def test_kinds_are_string_enums_that_still_compare_and_serialise_as_text() -> None:
    assert MIG.kind is AllocationKind.MIG and MIG.kind == "mig"
    assert GpuRequest(gpus=2).kind is RequestKind.GPUS and GpuRequest(memory_bytes=10**10).kind == "memory"
    assert MIG.to_json()["kind"] == "mig" and '"kind":"mig"' in MIG.model_dump_json()
