"""A job's eligible nodes (what a backend's node filters allow, e.g. kube-scheduler's predicates on
Kubernetes): the scheduler places, partitions and preempts only there, and says so when none is left."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from runai_lite.model import Bind, Job
from runai_lite.scheduler import plan
from runai_lite.scheduler.invariants import check_plan, check_snapshot
from tests.scheduler.builders import a100, cluster, describe, gpu, job, node, on_gpus, running


def only(pending: Job, *nodes: str) -> Job:
    return pending.model_copy(update={"eligible_nodes": nodes})


def check(snapshot) -> dict:
    result = plan(snapshot)
    assert check_snapshot(snapshot) == [] and check_plan(snapshot, result) == []
    return describe(result) | {"plan": result}


def test_a_fraction_goes_to_an_eligible_node_though_another_is_preferred():
    # without the filter the packing policy puts it beside the running half on node-1
    busy = running(job("busy", gpu="0.5"), on_gpus("node-1", 0).model_copy(
        update={"kind": "fraction", "share_milli": 500}))
    free = cluster([node("node-1", gpu(0)), node("node-2", gpu(0))], [busy, job("j", gpu="0.5", at=1)])
    assert check(free)["bind"] == ["j node-1/0 0.5"]
    restricted = cluster([node("node-1", gpu(0)), node("node-2", gpu(0))],
                         [busy, only(job("j", gpu="0.5", at=1), "node-2")])
    assert check(restricted)["bind"] == ["j node-2/0 0.5"]


def test_a_mig_partition_is_created_only_on_an_eligible_node():
    snapshot = cluster([node("node-1", a100()), node("node-2", a100())],
                       [only(job("m", mig_profile="2g.10gb"), "node-2")])
    lines = check(snapshot)
    assert [c.split("/")[0] for c in lines["create"]] == ["node-2"]
    assert lines["bind"][0].startswith("m node-2/")


def test_whole_gpus_and_cpu_only_jobs_keep_to_eligible_nodes():
    snapshot = cluster([node("node-1", gpu(0), gpu(1)), node("node-2", gpu(0), gpu(1))],
                       [only(job("w", gpu="2"), "node-2"), only(job("c"), "node-2")])
    assert sorted(check(snapshot)["bind"]) == ["c node-2", "w node-2/0,1"]


def test_preemption_makes_room_only_on_an_eligible_node():
    snapshot = cluster([node("node-1", gpu(0)), node("node-2", gpu(0))],
                       [running(job("t1", gpu="1"), on_gpus("node-1", 0), started=1),
                        running(job("t2", gpu="1"), on_gpus("node-2", 0), started=2),
                        only(job("i", type="interactive", gpu="1", at=3), "node-1")])
    lines = check(snapshot)
    # the newest victim would be t2; the filter leaves only t1's node
    assert lines["preempt"] == ["t1"]


def test_a_job_no_node_passes_is_pending_saying_so():
    snapshot = cluster([node("node-1", gpu(0))], [only(job("j", gpu="0.5"))])
    lines = check(snapshot)
    assert lines["bind"] == []
    assert lines["plan"].pending_reason("j") == "no node passes the job's node filters"


NODES = ("node-1", "node-2", "node-3")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["0.25", "0.5", "1", "2", None]),
                          st.sets(st.sampled_from(NODES)), st.sampled_from(["train", "interactive"])),
                min_size=1, max_size=8))
def test_no_job_is_ever_bound_outside_its_eligible_nodes(jobs):
    pending = [only(job(f"j{i}", gpu=g, type=t, at=i), *sorted(allowed)) for i, (g, allowed, t) in enumerate(jobs)]
    snapshot = cluster([node(name, gpu(0), gpu(1)) for name in NODES], pending)
    result = plan(snapshot)
    assert check_plan(snapshot, result) == []
    eligible = {j.id: j.eligible_nodes for j in pending}
    for action in result.of_type(Bind):
        assert action.allocation.node in eligible[action.job]
