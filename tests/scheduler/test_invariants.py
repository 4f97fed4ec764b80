"""The invariant checkers catch what they promise to catch (and stay quiet on valid input)."""

from __future__ import annotations

import pytest

from runai_lite.model import Bind, CreateMig, DestroyMig, MigInstance, Plan, Preempt, Snapshot
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_plan, check_snapshot
from tests.scheduler.builders import a100, cluster, gpu, job, node, on_gpus, on_mig, on_share, running


def with_instances(snapshot: Snapshot, *instances: MigInstance) -> Snapshot:
    n = snapshot.nodes[0]
    g = n.gpus[0].model_copy(update={"mig_instances": instances})
    return snapshot.model_copy(update={"nodes": (n.model_copy(update={"gpus": (g, *n.gpus[1:])}), *snapshot.nodes[1:])})


BROKEN_SNAPSHOTS = {
    "overlaps another instance": with_instances(cluster([node("n", a100())], []),
                                                MigInstance(profile="2g.10gb", start=0, size=2),
                                                MigInstance(profile="3g.20gb", start=0, size=4)),
    "not an allowed placement": with_instances(cluster([node("n", a100())], []),
                                               MigInstance(profile="3g.20gb", start=2, size=4)),
    "has size 2, expected 4": with_instances(cluster([node("n", a100())], []),
                                             MigInstance(profile="3g.20gb", start=0, size=2)),
    "sum to 1.25": cluster([node("n", gpu(0))], [running(job("a", gpu="0.75"), on_share("n", 0, 0.75)),
                                                 running(job("b", gpu="0.5"), on_share("n", 0, 0.5))]),
    "allocated whole to a but shared": cluster([node("n", gpu(0))], [
        running(job("a", gpu="1"), on_gpus("n", 0)), running(job("b", gpu="0.5"), on_share("n", 0, 0.5))]),
    "which does not exist": cluster([node("n", gpu(0))], [running(job("a", gpu="1"), on_gpus("n", 3))]),
    "is used by a, b": cluster([node("n", a100())], [
        running(job("a", mig_profile="2g.10gb"), on_mig("n", 0, "2g.10gb", 0)),
        running(job("b", mig_profile="2g.10gb"), on_mig("n", 0, "2g.10gb", 0))]),
    "appears more than once": cluster([node("n", gpu(0))], [job("a", gpu="1"), job("a", gpu="0.5")]),
    "holds a fraction of MIG-enabled": cluster([node("n", a100())], [running(job("a", gpu="0.5"), on_share("n", 0, 0.5))]),
}


@pytest.mark.parametrize("problem", sorted(BROKEN_SNAPSHOTS))
def test_check_snapshot_finds(problem: str) -> None:
    found = check_snapshot(BROKEN_SNAPSHOTS[problem])
    assert any(problem in p for p in found), found


def test_valid_snapshot_and_plan_have_no_problems() -> None:
    snapshot = cluster([node("n", a100(), ), node("m", gpu(0), gpu(1))],
                       [running(job("t", mig_profile="7g.40gb"), on_mig("n", 0, "7g.40gb", 0)),
                        job("i", type="interactive", mig_profile="3g.20gb"), job("f", gpu="0.5")])
    assert check_snapshot(snapshot) == []
    result = plan(snapshot)
    assert check_plan(snapshot, result) == []
    assert check_snapshot(apply_plan(snapshot, result)) == []


TWO_TRAINING = cluster([node("n", gpu(0))], [running(job("old", gpu="1"), on_gpus("n", 0)), job("new", gpu="1")])
INTERACTIVE_RUNNING = cluster([node("n", gpu(0))], [running(job("int", type="interactive", gpu="1"), on_gpus("n", 0)),
                                                     job("new", type="interactive", gpu="1")], {"team-a": 5})
MIG_RUNNING = cluster([node("n", a100())], [running(job("t", mig_profile="3g.20gb"), on_mig("n", 0, "3g.20gb", 0)),
                                            job("new", mig_profile="3g.20gb")])


def bind(job_id: str, allocation) -> Bind:
    return Bind(job=job_id, allocation=allocation, reason="test")


BROKEN_PLANS = {
    "equal or lower priority": (TWO_TRAINING, Plan(actions=(Preempt(job="old", reason="x"),
                                                            bind("new", on_gpus("n", 0))))),
    "interactive jobs are never preempted": (INTERACTIVE_RUNNING, Plan(actions=(
        Preempt(job="int", reason="x"), bind("new", on_gpus("n", 0))))),
    "not in the order": (MIG_RUNNING, Plan(actions=(
        bind("new", on_mig("n", 0, "3g.20gb", 4).model_copy(update={"mig_uuid": None})),
        CreateMig(node="n", gpu_index=0, profile="3g.20gb", start=4, reason="x")))),
    "neither bound nor given a reason": (TWO_TRAINING, Plan()),
    "without preempting it": (MIG_RUNNING, Plan(actions=(
        DestroyMig(node="n", gpu_index=0, profile="3g.20gb", start=0, reason="x"),), pending=(("new", "w"),))),
    "is bound but is Running": (TWO_TRAINING, Plan(actions=(bind("old", on_gpus("n", 0)),), pending=(("new", "w"),))),
    "those serve MIG only": (cluster([node("n", a100())], [job("f", gpu="0.5")]),
                             Plan(actions=(bind("f", on_share("n", 0, 0.5)),))),
    "above its deserved": (cluster([node("n", gpu(0), gpu(1))], [job("i", type="interactive", gpu="2")],
                                   {"team-a": 1}), Plan(actions=(bind("i", on_gpus("n", 0, 1)),))),
    "sum to 2": (TWO_TRAINING, Plan(actions=(bind("new", on_gpus("n", 0)),))),
}


@pytest.mark.parametrize("problem", sorted(BROKEN_PLANS))
def test_check_plan_finds(problem: str) -> None:
    snapshot, broken = BROKEN_PLANS[problem]
    found = check_plan(snapshot, broken)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize("problem", sorted(BROKEN_SNAPSHOTS))
def test_plan_still_decides_on_an_inconsistent_snapshot(problem: str) -> None:
    """A daemon must keep scheduling around bad state (the checkers report it): plan() does not
    raise, and each newcomer is bound or told why not."""
    broken = BROKEN_SNAPSHOTS[problem]
    snapshot = broken.model_copy(update={"jobs": (*broken.jobs, job("new-frac", gpu="0.5", at=99),
                                                  job("new-mig", mig_profile="1g.5gb", at=99))})
    result = plan(snapshot)
    bound = {a.job for a in result.actions if isinstance(a, Bind)}
    for newcomer in ("new-frac", "new-mig"):
        assert (newcomer in bound) != (result.pending_reason(newcomer) is not None)
