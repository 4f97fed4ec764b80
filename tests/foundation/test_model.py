"""The shared types: requests, job types and statuses, specs, allocations, plans."""

import pytest
from pydantic import ValidationError

from runai_lite.model import Allocation, GpuRequest, JobSpec, JobStatus, JobType, Plan


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
