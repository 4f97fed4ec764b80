"""Properties of plan() on random clusters, workloads and placement policies, over several cycles: no
overlapping partitions, shares on a GPU at most 1, no preemption by equal or lower priority within a
project, interactive jobs never preempted, plans deterministic and independent of input order."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from runai_lite.model import MILLI, Bind, Job, JobStatus, Plan, Preempt, Snapshot
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_plan, check_snapshot
from runai_lite.scheduler.placement import POLICY_NAMES
from tests.scheduler.builders import a100, cluster, gpu, job, node

GPU_KINDS = {
    "a100-mig": lambda i: a100(i),
    "a30-mig": lambda i: gpu(i, "A30", mig=True),
    "v100": lambda i: gpu(i, "V100-SXM2-16GB"),
    "t4": lambda i: gpu(i, "T4"),
    "a100-shared": lambda i: gpu(i, "A100-SXM4-40GB"),
}
REQUESTS = st.one_of(
    st.sampled_from(["0.25", "0.5", "0.75", "0.3", "1", "2"]).map(lambda g: {"gpu": g}),
    st.sampled_from(["3GB", "5GB", "10GB", "12GB", "20G", "30GB"]).map(lambda m: {"gpu_memory": m}),
    st.sampled_from(["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb", "1g.6gb", "2g.12gb"]).map(
        lambda p: {"mig_profile": p}),
)


@st.composite
def workloads(draw, projects=("team-a", "team-b")):
    nodes = []
    for n in range(draw(st.integers(1, 2))):
        kinds = draw(st.lists(st.sampled_from(sorted(GPU_KINDS)), min_size=1, max_size=3))
        nodes.append(node(f"node-{n}", *(GPU_KINDS[k](i) for i, k in enumerate(kinds))))
    quotas = {p: draw(st.sampled_from([0, 0.5, 1, 2, 3])) for p in projects}
    policy = draw(st.sampled_from(POLICY_NAMES))
    batches = []
    for cycle in range(3):
        batch = []
        for n in range(draw(st.integers(0, 6))):
            batch.append(job(f"c{cycle}j{n}", project=draw(st.sampled_from(projects)),
                             type=draw(st.sampled_from(["train", "train", "interactive", "preemptible"])),
                             at=cycle * 10 + n, **draw(REQUESTS)))
        finishing = draw(st.lists(st.booleans(), min_size=20, max_size=20))
        batches.append((batch, finishing))
    return nodes, quotas, policy, batches


def finish(snapshot: Snapshot, flags: list[bool]) -> Snapshot:
    """Some running jobs succeed; their MIG partitions stay, idle (lazy deallocation)."""
    running = [j.id for j in snapshot.jobs if j.status is JobStatus.RUNNING]
    done = {job_id for job_id, flag in zip(running, flags) if flag}
    jobs = tuple(j.model_copy(update={"status": JobStatus.SUCCEEDED, "allocation": None}) if j.id in done else j
                 for j in snapshot.jobs)
    nodes = tuple(n.model_copy(update={"gpus": tuple(g.model_copy(update={"mig_instances": tuple(
        i.model_copy(update={"job": None}) if i.job in done else i for i in g.mig_instances)}) for g in n.gpus)})
        for n in snapshot.nodes)
    return snapshot.model_copy(update={"jobs": jobs, "nodes": nodes})


def cycles(nodes, quotas, policy, batches):
    """Yield (snapshot, plan) for each scheduling cycle, applying each plan before the next."""
    snapshot = cluster(nodes, [], quotas, policy=policy)
    for number, (batch, finishing) in enumerate(batches):
        snapshot = snapshot.model_copy(update={"jobs": (*snapshot.jobs, *batch)})
        result = plan(snapshot)
        yield snapshot, result
        snapshot = finish(apply_plan(snapshot, result, now=float(number)), finishing)


def beneficiaries(snapshot: Snapshot, result: Plan, victim: Job) -> list[Job]:
    jobs = {j.id: j for j in snapshot.jobs}
    taken = {(victim.allocation.node, i) for i in victim.allocation.gpu_indices}
    return [jobs[b.job] for b in result.of_type(Bind)
            if taken & {(b.allocation.node, i) for i in b.allocation.gpu_indices}]


@given(workloads())
def test_every_plan_keeps_the_invariants(case) -> None:
    for snapshot, result in cycles(*case):
        assert check_snapshot(snapshot) == []
        assert check_plan(snapshot, result) == []


@given(workloads())
def test_no_overlapping_partitions_and_shares_at_most_one(case) -> None:
    for snapshot, result in cycles(*case):
        after = apply_plan(snapshot, result)
        for n in after.nodes:
            for g in n.gpus:
                taken: set[int] = set()
                for inst in g.mig_instances:
                    slices = set(range(inst.start, inst.start + inst.size))
                    assert not taken & slices, (n.name, g.index, g.mig_instances)
                    taken |= slices
        shares: dict[tuple[str, int], int] = {}
        for j in after.jobs:
            if j.status.holds_resources and j.allocation.kind != "mig":
                for i in j.allocation.gpu_indices:
                    key = (j.allocation.node, i)
                    shares[key] = shares.get(key, 0) + j.allocation.share_milli
        assert all(total <= MILLI for total in shares.values()), shares


@given(workloads(projects=("team-a",)))
def test_within_a_project_only_strictly_lower_priority_is_preempted(case) -> None:
    for snapshot, result in cycles(*case):
        jobs = {j.id: j for j in snapshot.jobs}
        for preempt in result.of_type(Preempt):
            victim = jobs[preempt.job]
            assert victim.type.preemptible, preempt
            gainers = beneficiaries(snapshot, result, victim)
            assert gainers and max(g.priority for g in gainers) > victim.priority, (preempt, gainers)


@given(workloads())
def test_interactive_jobs_are_never_preempted(case) -> None:
    for snapshot, result in cycles(*case):
        jobs = {j.id: j for j in snapshot.jobs}
        assert all(jobs[p.job].type.preemptible for p in result.of_type(Preempt))


@given(workloads())
def test_plans_are_deterministic_and_independent_of_input_order(case) -> None:
    for snapshot, result in cycles(*case):
        assert plan(snapshot) == result
        shuffled = snapshot.model_copy(update={"jobs": tuple(reversed(snapshot.jobs)),
                                               "nodes": tuple(reversed(snapshot.nodes))})
        assert plan(shuffled) == result


@given(workloads())
def test_every_pending_job_is_bound_or_told_why(case) -> None:
    for snapshot, result in cycles(*case):
        bound = {b.job for b in result.of_type(Bind)}
        for j in snapshot.jobs:
            if j.status is JobStatus.PENDING:
                assert (j.id in bound) != bool(result.pending_reason(j.id)), j.id


@given(workloads(projects=("team-a",)))
def test_replanning_an_applied_plan_preempts_no_one(case) -> None:
    """Stability within a project: with nothing else changed, the next cycle preempts no one, except
    on behalf of a job the last cycle itself preempted. Such a victim is requeued and may rightly
    displace lower-priority work (an interactive job takes the MIG slices of one
    interactive-preemptible job rather than three training jobs' share; the requeued job then takes
    one training job's place). The cross-project case can churn: see the scheduler notes on reclaim."""
    for snapshot, result in cycles(*case):
        victims = {p.job for p in result.of_type(Preempt)}
        after = apply_plan(snapshot, result)
        again = plan(after)
        jobs = {j.id: j for j in after.jobs}
        for preempt in again.of_type(Preempt):
            gainers = beneficiaries(after, again, jobs[preempt.job])
            assert gainers and all(g.id in victims for g in gainers), again
