"""One active controller (the Lease), the controller's watch-driven loop, the `runai-lite` entry
point, and how pods' GPU annotations are read."""

from __future__ import annotations

import threading
import time

import pytest
from typer.testing import CliRunner

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.lease import LeaderLease, LostLeadership
from runai_lite.backends.kube.manifests import InvalidRequest, pod_job_type, pod_request
from runai_lite.cli.runai_lite import app
from runai_lite.model import GpuRequest, JobSpec, JobType

from .world import IMAGE, World


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def lease(world: World, identity: str, clock: Clock) -> LeaderLease:
    return LeaderLease(world.api, "runai-lite", k.LEASE_NAME, identity, duration_seconds=15,
                       renew_deadline_seconds=10, clock=clock, monotonic=clock)


def test_one_replica_holds_the_lease_until_it_stops_renewing(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    clock = Clock()
    a, b = lease(world, "replica-a", clock), lease(world, "replica-b", clock)
    assert a.acquire_or_renew() and not b.acquire_or_renew()
    clock.now += 10
    assert a.acquire_or_renew() and not b.acquire_or_renew()
    clock.now += 16  # a stopped renewing: b saw no change for longer than the lease
    assert not a.leading()  # past its renew deadline a stepped down first
    assert b.acquire_or_renew() and not a.acquire_or_renew()
    assert b.holder() == "replica-b" and b.transitions == 1
    lease_object = kube_emulator.get("leases", k.LEASE_NAME, "runai-lite")
    assert lease_object["spec"]["leaseTransitions"] == 1
    b.release()
    assert a.acquire_or_renew()


def test_expiry_is_measured_on_the_observers_clock_not_from_the_holders_renew_time(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    holder_clock, clock = Clock(), Clock()
    holder_clock.now -= 3600  # the holder's wall clock is an hour behind
    a = LeaderLease(world.api, "runai-lite", k.LEASE_NAME, "a", clock=holder_clock, monotonic=clock)
    b = lease(world, "b", clock)
    assert a.acquire_or_renew()
    assert not b.acquire_or_renew()  # its renewTime looks an hour old; b has only just seen it
    clock.now += 14
    assert not b.acquire_or_renew()
    clock.now += 2  # 16 s without a change, as b saw it
    assert b.acquire_or_renew()


def test_a_replica_that_cannot_renew_steps_down_at_the_renew_deadline(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    clock = Clock()
    a = lease(world, "a", clock)
    assert a.acquire_or_renew()
    clock.now += 5
    kube_emulator.fail_next(500, verb="update", resource="leases")
    with pytest.raises(Exception):
        a.acquire_or_renew()
    assert a.leading()
    clock.now += 6  # 11 s since the last renewal: past the 10 s deadline, before the 15 s lease
    assert not a.leading()
    with pytest.raises(LostLeadership):
        a.check()


def test_two_replicas_racing_for_an_expired_lease_cannot_both_win(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    clock, frozen = Clock(), Clock()
    old = lease(world, "old", frozen)  # its clock stood still (paused): it believes it still leads
    assert old.acquire_or_renew()
    a, b = lease(world, "a", clock), lease(world, "b", clock)
    assert not a.acquire_or_renew() and not b.acquire_or_renew()
    clock.now += 16
    stale = world.api.get(a.path)
    assert a.acquire_or_renew()
    assert not b._write(stale, b._spec(clock.now, 1))  # b decided from the state before a won
    assert a.holder() == "a"
    assert old.leading()
    with pytest.raises(LostLeadership):
        old.fence()  # but its conditional renewal fails: it writes nothing more


def test_the_controller_loop_binds_what_the_watch_reports(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    stop = threading.Event()
    loop = threading.Thread(target=Controller(world.controller_api, IMAGE).run, args=(stop, "test-replica"),
                            kwargs={"resync_seconds": 30.0}, daemon=True)
    loop.start()
    try:
        world.backend.submit(JobSpec(name="j", project="team-b", image="busybox", request=GpuRequest(gpus=1)))
        world.kube.job_controller.sync()
        deadline = time.monotonic() + 20
        while not any(p["spec"].get("nodeName") for p in world.pods_of("team-b", "j")):
            assert time.monotonic() < deadline, "the controller did not bind the pod"
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=10)
    assert kube_emulator.get("leases", k.LEASE_NAME, "runai-lite")["spec"]["holderIdentity"] in (None, "test-replica")
    assert world.live_pod("team-b", "j")["spec"]["nodeName"] == "t4-node"


def test_runai_lite_commands_explain_themselves():
    runner = CliRunner()
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("controller", "agent", "reservation"):
        assert command in result.output
    result = runner.invoke(app, ["agent", "--driver", "simulated"], env={"NODE_NAME": ""})
    assert result.exit_code == 2 and "NODE_NAME" in result.output


def pod(annotations: dict, limits: dict | None = None, priority: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "resources": {"limits": limits or {}}}]}
    if priority:
        spec["priorityClassName"] = priority
    return {"metadata": {"name": "p", "annotations": annotations}, "spec": spec}


@pytest.mark.parametrize("annotations, limits, expected", [
    ({"gpu-fraction": "0.5"}, None, GpuRequest(fraction=0.5)),
    ({"gpu-memory": "4000"}, None, GpuRequest(memory_bytes=4000 * 2**20)),  # MiB, as KAI reads it
    ({"gpu-memory": "9537", k.GPU_MEMORY_BYTES: str(10**10)}, None, GpuRequest(memory_bytes=10**10)),
    ({k.MIG_PROFILE: "2g.10gb"}, None, GpuRequest(mig_profile="2g.10gb")),
    ({"nvidia.com/mig-3g.20gb": "1"}, None, GpuRequest(mig_profile="3g.20gb")),  # Run:ai's dynamic MIG
    ({}, {"nvidia.com/gpu": "2"}, GpuRequest(gpus=2)),
    ({}, None, None),
])
def test_pod_requests_are_read_from_runai_and_kai_annotations(annotations, limits, expected):
    assert pod_request(pod(annotations, limits)) == expected


@pytest.mark.parametrize("annotations, limits", [
    ({"gpu-fraction": "0.5", "gpu-memory": "100"}, None),
    ({"gpu-fraction": "1.5"}, None),
    ({"gpu-fraction": "half"}, None),
    ({"gpu-memory": "0"}, None),
    ({"gpu-fraction": "0.5"}, {"nvidia.com/gpu": "1"}),
    ({"nvidia.com/mig-1g.5gb": "1", "nvidia.com/mig-2g.10gb": "1"}, None),
    ({"gpu-fraction": "0.5", "gpu-fraction-num-devices": "2"}, None),
])
def test_contradictory_or_impossible_requests_are_refused(annotations, limits):
    with pytest.raises(InvalidRequest):
        pod_request(pod(annotations, limits))


def labelled(pod: dict, job_type: str) -> dict:
    pod["metadata"]["labels"] = {k.PRIORITY_LABEL: job_type}
    return pod


def test_job_type_comes_from_the_runai_label_and_the_priority_class_must_follow_it():
    assert pod_job_type(labelled(pod({}, priority="runai-lite-build"), "build")) is JobType.INTERACTIVE
    assert pod_job_type(labelled(pod({}, priority="runai-lite-interactive-preemptible"), "interactive-preemptible")) \
        is JobType.INTERACTIVE_PREEMPTIBLE
    assert pod_job_type(pod({})) is JobType.TRAIN
    assert pod_job_type(pod({}, priority="runai-lite-train")) is JobType.TRAIN
    job = labelled({"metadata": {"name": "j"}}, "build")
    assert pod_job_type(pod({}, priority="runai-lite-build"), job) is JobType.INTERACTIVE  # the Job's label counts
    # another install's classes: the controller is told its own release's names
    gpu = k.PriorityClassNames(prefix="gpu-runai-lite-")
    assert pod_job_type(labelled(pod({}, priority="gpu-runai-lite-build"), "build"), classes=gpu) is JobType.INTERACTIVE
    with pytest.raises(InvalidRequest, match="runs with priorityClassName gpu-runai-lite-build"):
        pod_job_type(labelled(pod({}, priority="runai-lite-build"), "build"), classes=gpu)


@pytest.mark.parametrize("label, priority", [
    (None, "runai-lite-build"), ("train", "runai-lite-build"), ("build", None), ("build", "runai-lite-train"),
    ("nonsense", "runai-lite-train"), ("build", "build"),  # Run:ai's own class name is not this install's
])
def test_a_priority_class_that_does_not_match_the_job_type_is_refused(label, priority):
    claimed = pod({}, priority=priority)
    with pytest.raises(InvalidRequest, match="priorityClassName|job type"):
        pod_job_type(labelled(claimed, label) if label else claimed)
