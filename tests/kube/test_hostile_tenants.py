"""A tenant who writes pods by hand (kubectl, YAML) and edits them while they run tries to get
more than the scheduler gave, to be charged to someone else, to make the controller write what it
should not, or to land where kube-scheduler would never put the pod. Each test is one attack from
issue 11; it failed on the code before the fix and passes after.

The later ones (preemption, reservation pods, controller replicas) are attacks in which a tenant,
or the cluster itself, makes the controller give one device twice."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from runai_lite.backends.kube import allocations, render_manifests
from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.install import CONTROLLER
from runai_lite.backends.kube.lease import LeaderLease, LostLeadership
from runai_lite.backends.kube.rest import ApiError, core
from runai_lite.errors import OperationalError
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import Allocation, JobSpec, JobType, Snapshot
from runai_lite.scheduler import plan
from tests.kube_emulator import KubeEmulator
from tests.kube_emulator.jobs import TRACKING_FINALIZER

from .booking import assert_not_overbooked
from .world import IMAGE, World

TEAM_B = "runai-team-b"


def spec(name: str, project: str = "team-b", **flags) -> JobSpec:
    return JobSpec(name=name, project=project, image="busybox", request=request_from_flags(**flags), user="bob",
                   command=("sleep", "1000"))


def hand_written_pod(name: str, annotations: dict | None = None, labels: dict | None = None,
                     namespace: str = TEAM_B, **spec_fields) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "annotations": annotations or {},
                         "labels": labels or {}},
            "spec": {"schedulerName": k.SCHEDULER_NAME, "containers": [{"name": "main", "image": "busybox"}],
                     **spec_fields}}


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    world.backend.create_project("team-c", 1)
    return world


def shares_on_gpu(world: World, node: str, index: int) -> int:
    """Thousandths of the GPU held by bound pods, from what the controller recorded for them."""
    total = 0
    for pod in world.kube.objects("pods"):
        text = (pod["metadata"].get("annotations") or {}).get(k.ALLOCATION)
        allocation = k.decode_allocation(text)
        if pod["spec"].get("nodeName") == node and allocation and index in allocation.gpu_indices:
            total += allocation.share_milli
    return total


def events_of(world: World, name: str, namespace: str = TEAM_B) -> list[dict]:
    return [e for e in world.kube.objects("events", namespace) if e["involvedObject"]["name"] == name]


def tenant_api(world: World, name: str = "alice") -> KubeApi:
    """A tenant with every right on the workload kinds of her namespace, as an `edit` binding gives."""
    world.kube.create("serviceaccounts", {"metadata": {"name": name, "namespace": TEAM_B}})
    world.kube.create("roles", {"metadata": {"name": "tenant", "namespace": TEAM_B}, "rules": [
        {"apiGroups": ["", "batch"], "resources": ["pods", "configmaps", "jobs", "events"], "verbs": ["*"]}]})
    world.kube.create("rolebindings", {
        "metadata": {"name": "tenant", "namespace": TEAM_B},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tenant"},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": TEAM_B}]})
    return KubeApi(world.kube.api_client(service_account=f"{TEAM_B}/{name}"))


def without_admission(world: World, name: str, change) -> None:
    """Change a pod as a tenant could on a cluster without runai-lite's admission policies (older
    than 1.30, or installed without them): the controller must not rely on them."""
    world.kube.mutate("pods", name, change, TEAM_B)


def refused_by_admission(attempt) -> str:
    with pytest.raises(ApiError) as refused:
        attempt()
    assert refused.value.status == 403
    return str(refused.value)


def test_a_forged_allocation_annotation_is_not_trusted(world: World):
    world.backend.submit(spec("a", gpu="0.5"))
    world.backend.submit(spec("b", gpu="0.5"))
    world.settle()
    forged = json.dumps({"kind": "fraction", "node": "t4-node", "gpu_indices": [0], "share_milli": 1})
    alice = tenant_api(world)
    assert "runai-lite-pod-state" in refused_by_admission(lambda: alice.create(
        core("pods", TEAM_B), hand_written_pod("sneaky", {k.ALLOCATION: forged, k.GPU_FRACTION: "0.5"})))
    alice.create(core("pods", TEAM_B), hand_written_pod("sneaky", {k.GPU_FRACTION: "0.5"}))
    without_admission(world, "sneaky", lambda pod: pod["metadata"]["annotations"].update({k.ALLOCATION: forged}))
    world.settle()

    pod = world.kube.get("pods", "sneaky", TEAM_B)
    assert not pod["spec"].get("nodeName")
    assert world.kube.get("configmaps", "sneaky-runai-gpu", TEAM_B) is None
    assert pod["metadata"]["annotations"][k.STATUS] == "Pending"
    assert "0.5" in pod["metadata"]["annotations"][k.PENDING_REASON]


def test_removing_the_allocation_annotation_from_a_running_pod_frees_nothing(world: World):
    world.backend.submit(spec("a", gpu="0.5"))
    world.backend.submit(spec("b", gpu="0.5"))
    world.settle()
    victim = world.live_pod("team-b", "a")["metadata"]["name"]
    alice = tenant_api(world)
    refused_by_admission(lambda: alice.merge_patch(core("pods", TEAM_B, victim),
                                                   {"metadata": {"annotations": {k.ALLOCATION: None}}}))
    without_admission(world, victim, lambda pod: pod["metadata"]["annotations"].pop(k.ALLOCATION))
    world.backend.submit(spec("c", gpu="0.5"))
    world.settle()

    assert not world.live_pod("team-b", "c")["spec"].get("nodeName")
    assert world.backend.get_job("team-b", "c").pending_reason
    assert world.backend.get_job("team-b", "a").gpus_allocated == 0.5  # its mirror was put back


def test_a_pod_labelled_with_another_projects_queue_is_charged_to_its_namespace(world: World):
    world.kube.create("pods", hand_written_pod("mislabelled", {k.GPU_FRACTION: "0.5"}, {k.QUEUE_LABEL: "team-c"}))
    world.settle()

    assert world.kube.get("pods", "mislabelled", TEAM_B)["spec"]["nodeName"] == "t4-node"
    usage = {p.name: p.allocated_gpus for p in world.backend.list_projects()}
    assert usage == {"team-b": 0.5, "team-c": 0}


def test_a_pod_cannot_make_the_controller_rewrite_another_configmap(world: World):
    world.kube.create("configmaps", {"metadata": {"name": "precious", "namespace": TEAM_B},
                                     "data": {"DATABASE_URL": "postgres://db"}})
    world.kube.create("pods", hand_written_pod("borrower", {k.GPU_FRACTION: "0.5", "runai-lite/configmap": "precious"}))
    world.settle()

    assert world.kube.get("configmaps", "precious", TEAM_B)["data"] == {"DATABASE_URL": "postgres://db"}
    assert world.kube.get("pods", "borrower", TEAM_B)["spec"]["nodeName"] == "t4-node"
    own = world.kube.get("configmaps", "borrower-runai-gpu", TEAM_B)
    assert own["data"]["GPU_PORTION"] == "0.5"


def test_a_configmap_of_the_derived_name_that_is_not_runai_lites_is_left_alone(world: World):
    world.kube.create("configmaps", {"metadata": {"name": "squatter-runai-gpu", "namespace": TEAM_B},
                                     "data": {"KEEP": "me"}})
    world.kube.create("pods", hand_written_pod("squatter", {k.GPU_FRACTION: "0.5"}))
    world.settle()

    assert world.kube.get("configmaps", "squatter-runai-gpu", TEAM_B)["data"] == {"KEEP": "me"}
    pod = world.kube.get("pods", "squatter", TEAM_B)
    assert not pod["spec"].get("nodeName")
    assert "squatter-runai-gpu" in pod["metadata"]["annotations"][k.PENDING_REASON]


def test_a_hand_written_training_pod_claiming_the_build_class_is_refused(world: World):
    alice = tenant_api(world)
    assert "runai-lite-pod-priority" in refused_by_admission(lambda: alice.create(
        core("pods", TEAM_B), hand_written_pod("vip", {k.GPU_FRACTION: "0.5"}, priorityClassName="runai-lite-build")))
    alice.create(core("pods", TEAM_B), hand_written_pod("vip", {k.GPU_FRACTION: "0.5"}))
    without_admission(world, "vip", lambda pod: pod["spec"].update(priorityClassName="runai-lite-build", priority=100))
    world.settle()

    pod = world.kube.get("pods", "vip", TEAM_B)
    assert not pod["spec"].get("nodeName")
    assert "build" in pod["metadata"]["annotations"][k.PENDING_REASON]
    [warning] = [e for e in events_of(world, "vip") if e["reason"] == "InvalidRequest"]
    assert warning["type"] == "Warning"


def test_a_huge_pod_with_a_node_selector_is_not_bound_to_a_small_tainted_node(world: World):
    world.kube.add_node("small", capacity={"cpu": "4", "memory": "16Gi", k.GPU_RESOURCE: "1"},
                        labels={k.GPU_PRODUCT_LABEL: "Tesla-T4", k.GPU_MEMORY_LABEL: "15360"})
    world.kube.mutate("nodes", "small", lambda node: node["spec"].update(
        taints=[{"key": "dedicated", "value": "team-a", "effect": "NoExecute"}]))
    world.kube.create("pods", hand_written_pod(
        "huge", {k.GPU_FRACTION: "0.5"}, nodeSelector={"topology.kubernetes.io/zone": "us-east-1a"},
        containers=[{"name": "main", "image": "busybox",
                     "resources": {"requests": {"cpu": "64", "memory": "512Gi"}}}]))
    world.settle()

    pod = world.kube.get("pods", "huge", TEAM_B)
    assert not pod["spec"].get("nodeName")
    reason = pod["metadata"]["annotations"][k.PENDING_REASON]
    assert "didn't match nodeSelector" in reason and "Insufficient cpu" in reason, reason

    world.kube.add_node("big", capacity={"cpu": "96", "memory": "1Ti", k.GPU_RESOURCE: "1"},
                        labels={k.GPU_PRODUCT_LABEL: "Tesla-T4", k.GPU_MEMORY_LABEL: "15360",
                                "topology.kubernetes.io/zone": "us-east-1a"})
    world.settle()
    assert world.kube.get("pods", "huge", TEAM_B)["spec"]["nodeName"] == "big"


# -- K-ctrl: preemption, reservation pods and controller replicas ----------------------------------


def job(name: str, project: str = "team-b", interactive: bool = False, **flags) -> JobSpec:
    return JobSpec(name=name, project=project, image="busybox", request=request_from_flags(**flags), user="bob",
                   type=JobType.INTERACTIVE if interactive else JobType.TRAIN, command=("sleep", "1000"))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def graceful() -> Iterator[KubeEmulator]:
    with KubeEmulator(seed=0, graceful_pod_deletion=True) as emulator:
        yield emulator


# -- 11.2: preemption double-books --------------------------------------------------------------


def test_a_victim_in_its_grace_period_keeps_its_share_from_the_preemptor(graceful, tmp_path):
    world = World(graceful, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    world.backend.submit(job("train", gpu="0.5"))
    world.backend.submit(job("other", gpu="0.5"))
    for _ in range(3):
        world.kube.job_controller.sync()
        world.controller.reconcile_once()
        world.device_plugin()
    world.backend.submit(job("inter", interactive=True, gpu="0.75"))
    for _ in range(3):  # the victims are terminating, still running on the GPU
        world.kube.job_controller.sync()
        world.controller.reconcile_once()
        world.device_plugin()
        assert_not_overbooked(world.kube)
    assert not any(p["spec"].get("nodeName") for p in world.pods_of("team-b", "inter"))


# -- 11.5: two replicas double-book a GPU -------------------------------------------------------


@pytest.mark.parametrize("paused_clock", ["runs on", "stood still"])
def test_a_replica_paused_mid_pass_writes_nothing_once_another_leads(kube_emulator, tmp_path, paused_clock):
    """Replica A plans to bind y (0.6 of the GPU) and is paused before writing; B takes the Lease
    over and binds x (0.6, interactive) to the same GPU; then A resumes with its stale plan."""
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    clock = Clock()
    a_clock = clock if paused_clock == "runs on" else Clock()  # a clock that stood still fools the deadline
    a_lease = LeaderLease(world.api, k.SYSTEM_NAMESPACE, k.LEASE_NAME, "a", clock=clock, monotonic=a_clock)
    b_lease = LeaderLease(world.api, k.SYSTEM_NAMESPACE, k.LEASE_NAME, "b", clock=clock, monotonic=clock)
    planned, resume = threading.Event(), threading.Event()

    def plan_then_pause(snapshot: Snapshot):
        decided = plan(snapshot)
        planned.set()
        resume.wait(timeout=30)
        return decided

    a = Controller(world.controller_api, IMAGE, planner=plan_then_pause, lease=a_lease)
    b = Controller(world.controller_api, IMAGE, lease=b_lease)
    world.backend.submit(job("y", gpu="0.6"))
    world.kube.job_controller.sync()
    assert a_lease.acquire_or_renew() and not b_lease.acquire_or_renew()
    failure: list[BaseException] = []

    def run_a() -> None:
        try:
            a.reconcile_once()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            failure.append(error)

    paused = threading.Thread(target=run_a)
    paused.start()
    assert planned.wait(timeout=30)

    clock.now += 20  # A renews nothing while paused; B sees the Lease unchanged for 20 s
    assert b_lease.acquire_or_renew()
    world.backend.submit(job("x", interactive=True, gpu="0.6"))
    world.kube.job_controller.sync()
    for _ in range(3):
        b.reconcile_once()
        world.device_plugin()
        world.kube.kubelet.sync()
    assert any(p["spec"].get("nodeName") for p in world.pods_of("team-b", "x"))

    resume.set()
    paused.join(timeout=30)
    assert len(failure) == 1 and isinstance(failure[0], LostLeadership)
    for _ in range(3):  # whatever A left behind, the leader goes on from it
        b.reconcile_once()
        world.device_plugin()
        world.kube.kubelet.sync()
        assert_not_overbooked(world.kube)
    assert not any(p["spec"].get("nodeName") for p in world.pods_of("team-b", "y"))


# -- 11.4: reservation pods are never rolled back -----------------------------------------------


def reservation_world(kube: KubeEmulator, tmp_path, gpus: int = 1) -> tuple[World, Clock]:
    world = World(kube, tmp_path)
    world.add_gpu_node("t4-node", gpus)
    world.backend.create_project("team-b", gpus)
    clock = Clock()
    world.controller = Controller(world.controller_api, IMAGE, monotonic=clock)
    return world, clock


def reservations(world: World) -> list[dict]:
    """The reservation pods not being deleted."""
    return [p for p in world.kube.objects("pods", k.RESERVATION_NAMESPACE) if not p["metadata"].get("deletionTimestamp")]


def reservation_creates(world: World) -> int:
    return len([r for r in world.kube.requests_for("create", "pods") if r.namespace == k.RESERVATION_NAMESPACE])


def claimed(world: World, name: str) -> bool:
    return any(k.ALLOCATION in (p["metadata"].get("annotations") or {}) for p in world.pods_of("team-b", name))


def event_reasons(world: World, namespace: str = "runai-team-b") -> list[str]:
    return [e["reason"] for e in world.kube.objects("events", namespace)]


def test_a_refused_reservation_pod_rolls_its_claim_back_and_backs_off(kube_emulator, tmp_path):
    world, clock = reservation_world(kube_emulator, tmp_path)
    world.backend.submit(job("frac", gpu="0.5"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    [reservation] = reservations(world)
    assert claimed(world, "frac")
    world.kube.patch_status("pods", reservation["metadata"]["name"],
                            {"phase": "Failed", "reason": "UnexpectedAdmissionError"}, k.RESERVATION_NAMESPACE)

    for _ in range(4):  # every pass: no new reservation pod while the GPU rests
        world.controller.reconcile_once()
        world.kube.kubelet.sync()
    assert reservations(world) == [] and reservation_creates(world) == 1
    assert not claimed(world, "frac")
    assert "ReservationFailed" in event_reasons(world)
    assert world.backend.get_job("team-b", "frac").pending_reason

    clock.now += 11  # the backoff is over: tried again, and this time the device plugin answers
    world.settle()
    assert reservation_creates(world) == 2
    assert world.live_pod("team-b", "frac")["spec"]["nodeName"] == "t4-node"


def test_a_reservation_pod_that_reports_no_gpu_times_out(kube_emulator, tmp_path):
    world, clock = reservation_world(kube_emulator, tmp_path)
    world.backend.submit(job("frac", gpu="0.5"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    world.controller.reconcile_once()  # its timeout starts when the controller first sees it
    assert claimed(world, "frac") and len(reservations(world)) == 1
    clock.now += 181
    world.controller.reconcile_once()
    world.kube.kubelet.sync()  # the bound pod's deletion is graceful: its kubelet confirms it
    assert not claimed(world, "frac") and reservations(world) == []
    [message] = [e["message"] for e in world.kube.objects("events", "runai-team-b")
                 if e["reason"] == "ReservationFailed"]
    assert "reported no GPU within 180 s" in message


@pytest.mark.parametrize("device_plugin_gives", ["the same GPU", "another GPU"])
def test_fractions_whose_reservation_pod_vanished_are_reserved_again_on_their_gpu_or_stopped(
        kube_emulator, tmp_path, device_plugin_gives):
    world, _ = reservation_world(kube_emulator, tmp_path, gpus=2)
    world.backend.submit(job("a", gpu="0.5"))
    world.backend.submit(job("b", gpu="0.5"))
    world.settle()
    [reservation] = reservations(world)
    uuid = reservation["metadata"]["annotations"][k.RESERVED_UUID]
    world.kube.delete("pods", reservation["metadata"]["name"], k.RESERVATION_NAMESPACE, gracePeriodSeconds=0)

    world.controller.reconcile_once()
    [again] = reservations(world)
    if device_plugin_gives == "another GPU":
        world.kube.patch("pods", again["metadata"]["name"],
                         {"metadata": {"annotations": {k.RESERVED_UUID: "GPU-somebody-elses"}}}, k.RESERVATION_NAMESPACE)
    world.settle()

    running = [p for name in ("a", "b") for p in world.pods_of("team-b", name)
               if p["spec"].get("nodeName") and p["status"].get("phase") == "Running"]
    on = {(p["metadata"].get("annotations") or {}).get(k.ALLOCATION) for p in running}
    if device_plugin_gives == "the same GPU":
        assert len(running) == 2 and all(uuid in a for a in on)  # kept, on the GPU reserved again
        assert "ReservationLost" not in event_reasons(world)
    else:
        assert event_reasons(world).count("ReservationLost") == 2  # both were stopped
        # and their Jobs made new pods, placed afresh with a reservation that holds their GPU
        for pod in running:
            reserved = {r["metadata"]["annotations"].get(k.RESERVED_UUID) for r in reservations(world)}
            assert any(u in pod["metadata"]["annotations"][k.ALLOCATION] for u in reserved)
    assert_not_overbooked(world.kube)


# -- 11.6: a preemption completes a Job by mistake ----------------------------------------------
# (the emulator's Job controller counts pods by its tracking finalizer, as the real one does)


def job_conditions(world: World, name: str) -> set[str]:
    job = world.kube.get("jobs.batch", name, "runai-team-b")
    return {c["type"] for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"}


def test_a_preempted_training_pod_that_exits_0_on_sigterm_is_requeued_not_completed(graceful, tmp_path):
    world = World(graceful, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    world.backend.submit(job("train", gpu="1"))
    world.settle()
    victim = world.live_pod("team-b", "train")["metadata"]["name"]

    world.backend.submit(job("inter", interactive=True, gpu="1"))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()  # evicted: it stops through its grace period
    assert world.kube.get("pods", victim, "runai-team-b")["metadata"].get("deletionTimestamp")
    world.kube.kubelet.finish("runai-team-b", victim, exit_code=0)  # its SIGTERM handler exits 0
    world.kube.job_controller.sync()
    assert "Complete" not in job_conditions(world, "train")
    world.settle()
    assert "Complete" not in job_conditions(world, "train") and "Failed" not in job_conditions(world, "train")
    assert [p["metadata"]["name"] for p in world.pods_of("team-b", "train")] != [victim]  # requeued: a new pod
    assert world.backend.get_job("team-b", "train").status.value == "Pending"
    assert world.live_pod("team-b", "inter")["spec"]["nodeName"] == "t4-node"


def test_a_pod_the_kubelet_refused_at_admission_does_not_fail_an_interactive_job(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    world.backend.submit(job("inter", interactive=True, gpu="1"))  # backoffLimit 0: one failure ends it
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    refused = world.live_pod("team-b", "inter")["metadata"]["name"]
    assert world.live_pod("team-b", "inter")["spec"]["nodeName"] == "t4-node"
    world.kube.patch_status("pods", refused, {"phase": "Failed", "reason": "UnexpectedAdmissionError",
                                              "message": "Allocate failed due to no healthy devices present"},
                            "runai-team-b")
    world.controller.reconcile_once()  # sees the refusal before the Job controller counts it
    world.kube.job_controller.sync()
    assert "Failed" not in job_conditions(world, "inter")
    assert "AdmissionRefused" in event_reasons(world)
    world.settle()
    [again] = [p for p in world.pods_of("team-b", "inter") if p["status"].get("phase") not in ("Failed", "Succeeded")]
    assert again["metadata"]["name"] != refused and again["spec"]["nodeName"] == "t4-node"


def test_a_victim_whose_eviction_is_refused_stays_counted_by_its_job(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-b", 1)
    world.backend.submit(job("train", gpu="1"))
    world.settle()
    victim = world.live_pod("team-b", "train")["metadata"]["name"]
    world.backend.submit(job("inter", interactive=True, gpu="1"))
    world.kube.job_controller.sync()
    world.kube.fail_next(429, verb="create", resource="pods", subresource="eviction",
                         message="Cannot evict pod as it would violate the pod's disruption budget.")
    world.controller.reconcile_once()
    assert "PreemptionFailed" in event_reasons(world)
    # still running and still the Job's: when it ends by itself, the Job counts it
    assert TRACKING_FINALIZER in world.kube.get("pods", victim, "runai-team-b")["metadata"]["finalizers"]


def test_a_tenant_cannot_write_an_allocation_object(world: World):
    world.backend.submit(spec("a", gpu="0.5"))
    world.settle()
    pod = world.live_pod("team-b", "a")
    alice = tenant_api(world)
    forged = allocations.allocation_object(pod, Allocation(kind="fraction", node="t4-node", gpu_indices=(0,),
                                                           share_milli=1), "2026-01-01T00:00:00Z")
    forged["metadata"]["name"] = "another"
    for attempt in (lambda: alice.create(allocations.path(TEAM_B), forged),
                    lambda: alice.merge_patch(allocations.path(TEAM_B, pod["metadata"]["name"]),
                                              {"spec": {"allocation": {"share_milli": 1}}}),
                    lambda: alice.delete(allocations.path(TEAM_B, pod["metadata"]["name"]))):
        assert "forbidden" in refused_by_admission(attempt)  # RBAC: no role of hers names the kind
    # nor may she change what the scheduler reads on her own pod
    refused_by_admission(lambda: alice.merge_patch(core("pods", TEAM_B, pod["metadata"]["name"]),
                                                   {"metadata": {"annotations": {k.GPU_FRACTION: "0.001"}}}))
    [record] = world.kube.objects(f"{allocations.PLURAL}.{allocations.GROUP}", TEAM_B)
    assert allocations.parse(record).share_milli == 500


def test_only_the_controller_may_write_allocations_and_users_may_read_them():
    writers, readers = set(), set()
    for role in (m for m in render_manifests() if m["kind"] in ("Role", "ClusterRole")):
        for rule in role["rules"]:
            if allocations.GROUP in rule["apiGroups"] and allocations.PLURAL in rule["resources"]:
                (writers if set(rule["verbs"]) - {"get", "list", "watch"} else readers).add(role["metadata"]["name"])
        aggregation = {key for key in role["metadata"]["labels"]
                       if key.startswith("rbac.authorization.k8s.io/aggregate-to-")}
        assert aggregation <= {"rbac.authorization.k8s.io/aggregate-to-view"}  # never into edit or admin
    assert writers == {CONTROLLER} and readers == {"runai-lite-allocation-reader"}


def test_an_allocation_left_by_an_earlier_pod_of_the_same_name_counts_for_nothing(world: World):
    world.kube.create("pods", hand_written_pod("reused", {k.GPU_FRACTION: "0.5"}))
    world.backend.submit(spec("b", gpu="0.5"))
    world.settle()
    first = world.kube.get("pods", "reused", TEAM_B)
    assert first["spec"]["nodeName"] == "t4-node"
    # deleted and written again before the garbage collector removed the old Allocation
    world.kube.delete("pods", "reused", TEAM_B, propagationPolicy="Orphan", gracePeriodSeconds=0)
    world.kube.create("pods", hand_written_pod("reused", {k.GPU_FRACTION: "0.5"}))
    world.backend.submit(spec("c", gpu="0.5"))
    world.settle()

    live = {p["metadata"]["name"]: p for p in world.kube.objects("pods", TEAM_B)}
    assert live["reused"]["metadata"]["uid"] != first["metadata"]["uid"]
    records = world.kube.objects(f"{allocations.PLURAL}.{allocations.GROUP}", TEAM_B)
    assert len(records) == 2 and shares_on_gpu(world, "t4-node", 0) == 1000
    for record in records:
        assert record["spec"]["podUID"] == live[record["spec"]["podName"]]["metadata"]["uid"]


def test_a_controller_on_a_cluster_without_the_allocation_kind_stops_and_says_why(kube_emulator):
    kube_emulator.create_namespace("runai-team-b", labels={k.QUEUE_LABEL: "team-b"})
    with pytest.raises(OperationalError, match="runai-adm install"):
        Controller(KubeApi(kube_emulator.api_client()), "img").reconcile_once()
