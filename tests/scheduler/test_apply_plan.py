"""apply_plan: the pure effect of a plan, as the MIG-churn benchmark and the property tests use it."""

from __future__ import annotations

from runai_lite.model import JobStatus, Plan, Preempt
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_snapshot
from tests.scheduler.builders import a100, cluster, gpu, job, node, on_mig, running


def test_binds_run_jobs_and_created_instances_appear() -> None:
    snapshot = cluster([node("n", a100(), gpu(1))], [job("m", mig_profile="3g.20gb"), job("f", gpu="0.5")])
    after = apply_plan(snapshot, plan(snapshot), now=42.0)
    jobs = {j.id: j for j in after.jobs}
    assert jobs["m"].status is JobStatus.RUNNING and jobs["m"].started_at == 42.0
    assert jobs["f"].allocation.kind == "fraction" and jobs["f"].allocation.share_milli == 500
    (instance,) = after.nodes[0].gpus[0].mig_instances
    assert (instance.profile, instance.size, instance.job, instance.uuid) == ("3g.20gb", 4, "m", None)
    assert jobs["m"].allocation.mig_uuid is None  # filled in once the agent reports the instance
    assert check_snapshot(after) == []


def test_a_preempted_job_is_requeued_and_its_partition_stays_idle() -> None:
    snapshot = cluster([node("n", a100())], [running(job("t", mig_profile="2g.10gb"), on_mig("n", 0, "2g.10gb", 2))])
    after = apply_plan(snapshot, Plan(actions=(Preempt(job="t", reason="test"),)))
    (victim,) = after.jobs
    assert (victim.status, victim.allocation, victim.started_at) == (JobStatus.PENDING, None, None)
    (instance,) = after.nodes[0].gpus[0].mig_instances
    assert (instance.profile, instance.start, instance.job) == ("2g.10gb", 2, None)


def test_the_requeued_job_reuses_its_idle_partition_next_cycle() -> None:
    snapshot = cluster([node("n", a100())], [running(job("t", mig_profile="2g.10gb"), on_mig("n", 0, "2g.10gb", 2))])
    requeued = apply_plan(snapshot, Plan(actions=(Preempt(job="t", reason="test"),)))
    again = plan(requeued)
    assert not again.pending and [a.action for a in again.actions] == ["bind"]
    assert again.actions[0].allocation.mig_uuid == "MIG-A100-SXM4-40GB-0-2"


def test_the_input_snapshot_is_not_changed() -> None:
    snapshot = cluster([node("n", a100())], [job("m", mig_profile="1g.5gb")])
    before = snapshot.model_dump()
    apply_plan(snapshot, plan(snapshot))
    assert snapshot.model_dump() == before
