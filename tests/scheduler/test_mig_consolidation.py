"""Where a new MIG instance goes when idle partitions are about (lazy deallocation).

Idle slices count as nearly free: an idle instance of the profile needed is reused as it is;
otherwise the instance goes where it packs best with running work, destroying idle instances in
the way at a small cost, so empty GPUs stay whole for large profiles. Preemption stays the last
resort. Each test reads as a story.
"""

from __future__ import annotations

from runai_lite.model import JobStatus
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_plan, check_snapshot
from tests.scheduler.builders import a100, cluster, describe, gpu, job, node, on_mig, running

# GPU 0 is busy: a 3g.20gb at 4 and a 1g.5gb at 2 run there, and an idle 1g.5gb sits at 0.
# GPU 1 is empty.
BUSY_WITH_IDLE = [
    running(job("big", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 4)),
    running(job("small", mig_profile="1g.5gb"), on_mig("node-1", 0, "1g.5gb", 2)),
]
TWO_A100 = node("node-1", a100(0, idle=(("1g.5gb", 0),)), a100(1))


def _planned(snapshot):
    result = plan(snapshot)
    assert check_snapshot(snapshot) == [] and check_plan(snapshot, result) == []
    return result, describe(result)


def test_a_new_2g_10gb_destroys_an_idle_1g_5gb_on_the_busy_gpu_rather_than_opening_the_empty_one() -> None:
    result, lines = _planned(cluster([TWO_A100], [*BUSY_WITH_IDLE, job("new", mig_profile="2g.10gb")], {"team-a": 4}))
    assert lines["destroy"] == ["node-1/0 1g.5gb@0"]
    assert lines["create"] == ["node-1/0 2g.10gb@0"]
    assert lines["bind"] == ["new node-1/0 2g.10gb@0"] and lines["preempt"] == []


def test_so_the_empty_gpu_stays_whole_for_a_7g_40gb_arriving_next() -> None:
    snapshot = cluster([TWO_A100], [*BUSY_WITH_IDLE, job("new", mig_profile="2g.10gb", at=1),
                                    job("whole", mig_profile="7g.40gb", at=2)], {"team-a": 4})
    result, lines = _planned(snapshot)
    assert sorted(lines["bind"]) == ["new node-1/0 2g.10gb@0", "whole node-1/1 7g.40gb@0"]
    after = apply_plan(snapshot, result, now=3)
    assert {j.id: j.status for j in after.jobs if j.id in ("new", "whole")} == {
        "new": JobStatus.RUNNING, "whole": JobStatus.RUNNING}
    assert check_snapshot(after) == []


def test_an_idle_instance_of_the_very_profile_is_reused_before_anything_is_created_or_destroyed() -> None:
    # GPU 0 has room beside running work; GPU 1 holds only an idle 2g.10gb. Reuse wins: no churn.
    snapshot = cluster([node("node-1", a100(0), a100(1, idle=(("2g.10gb", 2),)))],
                       [running(job("big", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 0)),
                        job("new", mig_profile="2g.10gb")])
    _, lines = _planned(snapshot)
    assert lines["create"] == [] and lines["destroy"] == []
    assert lines["bind"] == ["new node-1/1 2g.10gb@2"]


def test_a_memory_request_takes_a_fraction_rather_than_destroying_the_only_idle_partition() -> None:
    # The MIG GPU is full: running work plus one idle 1g.5gb, too small for 10GB. An ordinary GPU
    # has room, so the MIG layout is left alone: fractions come before destroying idle partitions.
    snapshot = cluster([node("node-1", a100(0, idle=(("1g.5gb", 6),))), node("node-2", gpu(0))],
                       [running(job("big", mig_profile="4g.20gb"), on_mig("node-1", 0, "4g.20gb", 0)),
                        running(job("mid", mig_profile="2g.10gb"), on_mig("node-1", 0, "2g.10gb", 4)),
                        job("mem", gpu_memory="10GB")], {"team-a": 4})
    _, lines = _planned(snapshot)
    assert lines["destroy"] == [] and lines["create"] == []
    assert lines["bind"] == ["mem node-2/0 0.591"]


def test_idle_partitions_are_destroyed_before_anyone_is_preempted_even_on_another_gpu() -> None:
    # GPU 0 is full of running training work; GPU 1 has only idle partitions. An interactive job
    # (which could preempt) gets its 7g.40gb by clearing GPU 1, and nobody is preempted.
    snapshot = cluster([node("node-1", a100(0), a100(1, idle=(("1g.5gb", 0), ("2g.10gb", 4))))],
                       [running(job("t", mig_profile="7g.40gb"), on_mig("node-1", 0, "7g.40gb", 0)),
                        job("int", type="interactive", mig_profile="7g.40gb")], {"team-a": 4})
    _, lines = _planned(snapshot)
    assert lines["preempt"] == []
    assert sorted(lines["destroy"]) == ["node-1/1 1g.5gb@0", "node-1/1 2g.10gb@4"]
    assert lines["bind"] == ["int node-1/1 7g.40gb@0"]
