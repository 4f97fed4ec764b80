"""The seeds' dynamic-MIG quickstart on the Kubernetes backend, over HTTP against the API emulator:
a dynamic-MIG node with a (simulated-driver) node agent, three 10GB training jobs, then an
interactive 20G job that preempts exactly one of them."""

from __future__ import annotations

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.controller import Controller
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus, JobType

from tests.metrics.scrape import samples, value

from .world import IMAGE, World


def spec(name: str, **flags) -> JobSpec:
    interactive = flags.pop("interactive", False)
    return JobSpec(name=name, project="team-a", image="gcr.io/run-ai-demo/quickstart-cuda",
                   type=JobType.INTERACTIVE if interactive else JobType.TRAIN, request=request_from_flags(**flags),
                   user="alice")


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_mig_node("gpu-node-1")
    world.backend.create_project("team-a", 2)
    world.backend.set_dynamic_mig("gpu-node-1", True)
    return world


def test_three_10gb_jobs_get_three_10gb_partitions_with_their_uuids(world: World):
    world.backend.submit(spec("mig1", gpu_memory="10GB"))
    world.backend.submit(spec("mig2", mig_profile="2g.10gb"))
    world.backend.submit(spec("mig3", mig_profile="2g.10gb"))
    world.settle()

    jobs = {j.name: j for j in world.backend.list_jobs("team-a")}
    assert {n: j.status for n, j in jobs.items()} == {n: JobStatus.RUNNING for n in ("mig1", "mig2", "mig3")}
    instances = world.drivers["gpu-node-1"].mig_instances(0)
    # --gpu-memory 10GB takes the smallest profile that holds it (1g.10gb: fewest slices, then compute)
    assert sorted(i.profile for i in instances) == ["1g.10gb", "2g.10gb", "2g.10gb"]
    assert all(i.memory_mib * 2**20 >= 10**10 for i in instances)
    uuids = {i.uuid for i in instances}
    assert {n: j.allocation.mig_profile for n, j in jobs.items()} == {"mig1": "1g.10gb", "mig2": "2g.10gb",
                                                                      "mig3": "2g.10gb"}
    for name, job in jobs.items():
        assert job.allocation is not None and job.allocation.kind == "mig"
        env = world.device_env("team-a", name)
        assert env["NVIDIA_VISIBLE_DEVICES"] == job.allocation.mig_uuid
        assert job.allocation.mig_uuid in uuids
        assert world.live_pod("team-a", name)["spec"]["nodeName"] == "gpu-node-1"
    assert len({j.allocation.mig_uuid for j in jobs.values()}) == 3


def test_interactive_20g_job_preempts_exactly_one_training_job(world: World):
    for name, flags in (("mig1", {"gpu_memory": "10GB"}), ("mig2", {"mig_profile": "2g.10gb"}),
                        ("mig3", {"mig_profile": "2g.10gb"})):
        world.backend.submit(spec(name, **flags))
    world.settle()
    before = {j.name: j.allocation.mig_start for j in world.backend.list_jobs("team-a")}
    first_pods = {name: world.live_pod("team-a", name)["metadata"]["name"] for name in before}

    world.backend.submit(spec("mig1-int", gpu_memory="20G", interactive=True))
    world.settle()

    jobs = {j.name: j for j in world.backend.list_jobs("team-a")}
    interactive = jobs.pop("mig1-int")
    assert interactive.status is JobStatus.RUNNING
    assert interactive.allocation.mig_profile == "3g.20gb"
    requeued = [n for n, j in jobs.items() if j.status is JobStatus.PENDING]
    assert len(requeued) == 1, {n: j.status for n, j in jobs.items()}
    assert all(j.status is JobStatus.RUNNING for n, j in jobs.items() if n not in requeued)
    victim = requeued[0]
    # its partition was deleted and the new one took its slices; the other two kept theirs
    layout = sorted((i.profile, i.start) for i in world.drivers["gpu-node-1"].mig_instances(0))
    start = interactive.allocation.mig_start
    assert ("3g.20gb", start) in layout and len(layout) == 3
    assert start <= before[victim] < start + 4  # it held slices the 3g.20gb needed
    assert {n: jobs[n].allocation.mig_start for n in jobs if n != victim} == {n: s for n, s in before.items()
                                                                              if n != victim}
    # the victim was evicted (not failed) and its Job made a new pod that waits, saying why
    assert first_pods[victim] not in {p["metadata"]["name"] for p in world.pods_of("team-a", victim)}
    assert world.kube.requests_for("create", "pods", "eviction")[0].name == first_pods[victim]
    assert len(world.kube.requests_for("create", "pods", "eviction")) == 1
    job = world.kube.get("jobs.batch", victim, "runai-team-a")
    assert not any(c["type"] == "Failed" for c in job["status"].get("conditions", []))
    assert jobs[victim].pending_reason
    described = world.backend.get_job("team-a", victim)
    assert "Preempted" in [e.kind for e in described.events]
    # the controller's metrics: one preemption in team-a, the victim waiting, the new partition used
    metrics = samples(world.controller.metrics.exposition().decode())
    assert value(metrics, "runai_lite_preemptions_total", project="team-a") == 1
    assert value(metrics, "runai_lite_pending_jobs") == 1
    assert value(metrics, "runai_lite_mig_instances", profile="3g.20gb", state="used") == 1
    assert value(metrics, "runai_lite_allocations", kind="mig") == 3


def test_a_job_waits_for_its_partition_until_the_agent_reports_it(world: World):
    world.backend.submit(spec("mig1", gpu_memory="10GB"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()  # decides and writes the desired layout; no UUID yet

    pod = world.live_pod("team-a", "mig1")
    assert "nodeName" not in pod["spec"] or not pod["spec"]["nodeName"]
    assert k.ALLOCATION in pod["metadata"]["annotations"]
    desired, _ = k.decode_layout(world.kube.get("nodes", "gpu-node-1")["metadata"]["annotations"][k.MIG_DESIRED])
    assert [i["profile"] for i in desired[0]] == ["1g.10gb"]
    info = world.backend.get_job("team-a", "mig1")
    assert info.status is JobStatus.PENDING and "node agent" in info.pending_reason
    assert info.allocation is None and info.gpus_allocated == 0  # not running yet
    [gpu] = world.backend.list_nodes()[0].gpus
    assert [(m.state, m.job) for m in gpu.mig_instances] == [("creating", "team-a/mig1")]

    world.agents["gpu-node-1"].reconcile_once()
    world.controller.reconcile_once()
    pod = world.live_pod("team-a", "mig1")
    assert pod["spec"]["nodeName"] == "gpu-node-1"
    assert world.device_env("team-a", "mig1")["NVIDIA_VISIBLE_DEVICES"].startswith("MIG-")


def test_removing_the_dynamic_mig_role_refuses_while_mig_jobs_run(world: World):
    from runai_lite.errors import UserError

    world.backend.submit(spec("mig1", gpu_memory="10GB"))
    world.settle()
    with pytest.raises(UserError, match="team-a/mig1"):
        world.backend.set_dynamic_mig("gpu-node-1", False)
    assert world.kube.get("nodes", "gpu-node-1")["metadata"]["labels"][k.DYNAMIC_MIG_LABEL] == "true"
    world.backend.delete_jobs("team-a", ["mig1"])
    world.settle()
    world.backend.set_dynamic_mig("gpu-node-1", False)
    labels = world.kube.get("nodes", "gpu-node-1")["metadata"]["labels"]
    assert k.DYNAMIC_MIG_LABEL not in labels and k.MIG_ENABLED_LABEL not in labels


def test_a_refused_eviction_holds_back_the_plan_that_counted_on_it(world: World):
    for name, flags in (("mig1", {"gpu_memory": "10GB"}), ("mig2", {"mig_profile": "2g.10gb"}),
                        ("mig3", {"mig_profile": "2g.10gb"})):
        world.backend.submit(spec(name, **flags))
    world.settle()
    world.backend.submit(spec("mig1-int", gpu_memory="20G", interactive=True))
    world.kube.job_controller.sync()
    world.kube.fail_next(429, verb="create", resource="pods", subresource="eviction",
                         message="Cannot evict pod as it would violate the pod's disruption budget.")
    desired = world.kube.get("nodes", "gpu-node-1")["metadata"]["annotations"][k.MIG_DESIRED]
    world.controller.reconcile_once()
    assert world.live_pod("team-a", "mig1-int")["metadata"]["annotations"].get(k.ALLOCATION) is None
    assert world.kube.get("nodes", "gpu-node-1")["metadata"]["annotations"][k.MIG_DESIRED] == desired
    assert "PreemptionFailed" in [e.kind for e in world.backend.get_job("team-a", "mig1").events +
                                  world.backend.get_job("team-a", "mig2").events +
                                  world.backend.get_job("team-a", "mig3").events]
    world.settle()  # the next pass evicts and goes on
    assert world.backend.get_job("team-a", "mig1-int").status is JobStatus.RUNNING


def test_an_idle_partition_that_vanished_is_made_again_only_when_a_job_claims_it(world: World):
    driver = world.drivers["gpu-node-1"]
    world.backend.submit(spec("mig1", gpu_memory="10GB"))
    world.settle()
    world.backend.delete_jobs("team-a", ["mig1"])
    world.settle()
    [idle] = driver.mig_instances(0)  # lazy deallocation: kept for reuse
    driver.destroy_mig(0, idle.gi_id)  # as after a reboot
    world.settle()
    assert driver.mig_instances(0) == []  # idle: not worth recreating

    world.backend.submit(spec("mig2", gpu_memory="10GB"))
    world.settle()
    [again] = driver.mig_instances(0)
    assert (again.profile, again.start) == (idle.profile, idle.start)
    assert world.backend.get_job("team-a", "mig2").allocation.mig_uuid == again.uuid


def test_a_controller_that_dies_between_layout_and_claim_leaves_no_stray_partition(world: World):
    world.backend.submit(spec("mig1", mig_profile="3g.20gb"))
    world.kube.job_controller.sync()
    world.kube.fail_next(500, verb="patch", resource="pods", namespace="runai-team-a")  # the claim
    with pytest.raises(Exception, match="500"):
        Controller(world.controller_api, IMAGE).reconcile_once()
    desired, _ = k.decode_layout(world.kube.get("nodes", "gpu-node-1")["metadata"]["annotations"][k.MIG_DESIRED])
    assert [(i["profile"], i["required"]) for i in desired[0]] == [("3g.20gb", False)]
    world.agents["gpu-node-1"].reconcile_once()
    assert world.drivers["gpu-node-1"].mig_instances(0) == []  # nobody holds it: not made

    world.controller = Controller(world.controller_api, IMAGE)  # restarted: reuses the partition of the layout
    world.settle()
    [instance] = world.drivers["gpu-node-1"].mig_instances(0)
    assert (instance.profile, instance.start) == ("3g.20gb", desired[0][0]["start"])
    assert world.backend.get_job("team-a", "mig1").allocation.mig_uuid == instance.uuid
