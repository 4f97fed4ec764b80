"""CPU and memory requests are scheduled like GPUs: a table of stories, and a property over random
clusters and workloads that no plan ever promises a node more CPU or memory than it has."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runai_lite.model import JobStatus
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_snapshot
from tests.scheduler.builders import cluster, describe, gpu, job, node, on_gpus, running

CASES = [
    ("a job without GPUs takes the node with room for its CPU",
     cluster([node("small", cpu_milli=1000), node("big", cpu_milli=4000)], [job("c", cpu_milli=2000)]),
     ["c big"], {}),
    ("two jobs that fit one by one but not together: the earlier one runs, the later one waits saying so",
     cluster([node("n", cpu_milli=2000, memory_mib=4096)],
             [job("a", cpu_milli=1500, at=1), job("b", cpu_milli=1000, at=2)]),
     ["a n"], {"b": "no schedulable node has 1 CPU cores free (most free: 0.5 cores on n)"}),
    ("memory counts as CPU does, and a running job's request is taken",
     cluster([node("n", memory_mib=4096)],
             [running(job("old", memory_mib=3072), on_gpus("n")), job("new", memory_mib=2048)]),
     [], {"new": "no schedulable node has 2GiB of host memory free (most free: 1GiB on n)"}),
    ("a GPU job needs its host room too: the node with the free GPU but no memory is no place for it",
     cluster([node("n1", gpu(0), memory_mib=1024), node("n2", gpu(0), memory_mib=8192)],
             [job("g", gpu="1", memory_mib=2048)]),
     ["g n2/0"], {}),
    ("nodes that do not track CPU or memory take any request",
     cluster([node("n")], [job("c", cpu_milli=10**6, memory_mib=10**7)]), ["c n"], {}),
]


@pytest.mark.parametrize(("story", "snapshot", "binds", "pending"), CASES, ids=[c[0] for c in CASES])
def test_host_resource_stories(story, snapshot, binds, pending):
    result = plan(snapshot)
    assert sorted(describe(result).get("bind", [])) == sorted(binds)
    for job_id, phrase in pending.items():
        assert phrase in (result.pending_reason(job_id) or ""), result.pending_reason(job_id)


@st.composite
def host_workloads(draw):
    nodes = [node(f"n{i}", *(gpu(g) for g in range(draw(st.integers(0, 2)))),
                  cpu_milli=draw(st.sampled_from([None, 1000, 2000, 8000])),
                  memory_mib=draw(st.sampled_from([None, 1024, 4096, 16384])))
             for i in range(draw(st.integers(1, 3)))]
    batches = []
    for cycle in range(3):
        batches.append([job(f"c{cycle}j{n}", at=cycle * 10 + n, type=draw(st.sampled_from(["train", "interactive"])),
                            cpu_milli=draw(st.sampled_from([0, 250, 500, 1000, 1500, 3000])),
                            memory_mib=draw(st.sampled_from([0, 256, 1024, 3000, 5000])),
                            **draw(st.sampled_from([{}, {"gpu": "0.5"}, {"gpu": "1"}])))
                        for n in range(draw(st.integers(0, 6)))])
    return nodes, batches


@given(host_workloads())
def test_no_plan_promises_a_node_more_cpu_or_memory_than_it_has(workload):
    nodes, batches = workload
    snapshot = cluster(nodes, [], {"team-a": 8})
    for batch in batches:
        snapshot = snapshot.model_copy(update={"jobs": snapshot.jobs + tuple(batch)})
        snapshot = apply_plan(snapshot, plan(snapshot))
        assert check_snapshot(snapshot) == []
        for pending in (j for j in snapshot.jobs if j.status is JobStatus.PENDING):
            assert pending.allocation is None


def test_the_invariant_itself_catches_an_over_committed_node():
    snapshot = cluster([node("n", cpu_milli=1000, memory_mib=1024)],
                       [running(job("a", cpu_milli=800, memory_mib=512), on_gpus("n")),
                        running(job("b", cpu_milli=800, memory_mib=1024), on_gpus("n"))])
    assert check_snapshot(snapshot) == ["CPU requests on n sum to 1600m (more than 1000m)",
                                        "memory requests on n sum to 1536Mi (more than 1024Mi)"]
