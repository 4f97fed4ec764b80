"""`runai submit`'s host, storage, network, placement and lifetime flags on Kubernetes: what the
cluster gets (the batch Job, its pod, its Service and claims, through the real `kubernetes` client
against the emulator), what the scheduler does with them, and what `describe` reads back."""

from __future__ import annotations

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.submission.values import parse_port, parse_pvc, parse_volume
from runai_lite.errors import UserError
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus, ServiceType

from .world import World


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    w = World(kube_emulator, tmp_path)
    w.backend.create_project("team-a", 2)
    return w


def spec(name: str, **fields) -> JobSpec:
    return JobSpec(name=name, project="team-a", image="busybox", command=("sleep", "60"), **fields)


NAMESPACE = k.project_namespace("team-a")


def test_every_flag_reaches_the_job_its_pod_and_describe(world: World):
    world.kube.add_node("n1", capacity={"cpu": "8", "memory": "32Gi"})
    submitted = spec("all", cpu_milli=500, memory_mib=1024, cpu_limit_milli=2000, memory_limit_mib=2048,
                     volumes=(parse_volume("/data:/data:ro"),), pvcs=(parse_pvc("fast:10Gi:/scratch"),
                                                                      parse_pvc("shared:/shared:ro")),
                     ports=(parse_port("8080:80"),), service_type=ServiceType.NODE_PORT,
                     labels=(("team", "vision"), ("example.com/owner", "ana")), ttl_after_finish_s=3600,
                     large_shm=True, completions=3, parallelism=2)
    world.backend.submit(submitted)

    job = world.kube.get("jobs", "all", NAMESPACE)
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 2)
    pod_spec = job["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    assert container["resources"] == {"requests": {"cpu": "500m", "memory": "1024Mi"},
                                      "limits": {"cpu": "2000m", "memory": "2048Mi"}}
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    assert mounts["/data"]["hostPath"] == {"path": "/data"}
    assert mounts["/scratch"]["persistentVolumeClaim"]["claimName"] == k.pvc_name("all", 0)
    assert mounts["/shared"]["persistentVolumeClaim"] == {"claimName": "shared", "readOnly": True}
    assert mounts["/dev/shm"]["emptyDir"] == {"medium": "Memory"}
    for labels in (job["metadata"]["labels"], job["spec"]["template"]["metadata"]["labels"]):
        assert labels["team"] == "vision" and labels["example.com/owner"] == "ana"

    claim = world.kube.get("persistentvolumeclaims", k.pvc_name("all", 0), NAMESPACE)
    assert claim["spec"]["storageClassName"] == "fast"
    assert claim["spec"]["resources"]["requests"]["storage"] == str(10 * 2**30)
    service = world.kube.get("services", "all", NAMESPACE)
    assert service["spec"]["type"] == "NodePort"
    assert service["spec"]["ports"][0]["port"] == 8080 and service["spec"]["ports"][0]["targetPort"] == 80
    assert service["spec"]["selector"] == {k.JOB_NAME_LABEL: "all", k.QUEUE_LABEL: "team-a"}
    for owned in (claim, service):
        assert owned["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]

    # describe reads it all back from the objects
    options = world.backend.get_job("team-a", "all").options
    assert options.model_dump() == {**options.model_dump(), "cpu_milli": 500, "memory_mib": 1024,
                                    "cpu_limit_milli": 2000, "memory_limit_mib": 2048,
                                    "ttl_after_finish_s": 3600, "large_shm": True, "completions": 3,
                                    "parallelism": 2, "service_type": ServiceType.NODE_PORT}
    assert options.volumes == submitted.volumes and options.ports == submitted.ports
    assert set(options.labels) == set(submitted.labels)
    assert {p.claim_name or p.storage_class for p in options.pvcs} == {"shared", "fast"}
    assert [p.size_bytes for p in options.pvcs if p.storage_class] == [10 * 2**30]

    # the Service and the claim go with the job
    world.backend.delete_jobs("team-a", ["all"])
    assert world.kube.get("services", "all", NAMESPACE) is None
    assert world.kube.get("persistentvolumeclaims", k.pvc_name("all", 0), NAMESPACE) is None


def test_cpu_and_memory_requests_are_scheduled_and_a_job_that_cannot_fit_pends_saying_why(world: World):
    world.kube.add_node("small", capacity={"cpu": "2", "memory": "4Gi"})
    world.backend.submit(spec("fits", cpu_milli=1500, memory_mib=1024))
    world.backend.submit(spec("too-much-cpu", cpu_milli=1000))
    world.backend.submit(spec("too-much-memory", memory_mib=8 * 1024))
    world.settle()
    assert world.live_pod("team-a", "fits")["spec"]["nodeName"] == "small"
    for name, resource in (("too-much-cpu", "cpu"), ("too-much-memory", "memory")):
        job = world.backend.get_job("team-a", name)
        assert job.status is JobStatus.PENDING
        assert f"Insufficient {resource}" in (job.pending_reason or ""), job.pending_reason


def test_node_type_is_a_node_selector_on_run_ai_type(world: World):
    world.kube.add_node("plain")
    world.backend.submit(spec("typed", node_type="dgx"))
    world.settle()
    job = world.backend.get_job("team-a", "typed")
    assert job.status is JobStatus.PENDING and "nodeSelector" in (job.pending_reason or "")
    world.backend.set_node_type("plain", "dgx")  # `runai-adm set node-type plain dgx`
    assert world.kube.get("nodes", "plain")["metadata"]["labels"][k.NODE_TYPE_LABEL] == "dgx"
    world.settle()
    assert world.live_pod("team-a", "typed")["spec"]["nodeName"] == "plain"
    world.backend.set_node_type("plain", None)
    assert k.NODE_TYPE_LABEL not in world.kube.get("nodes", "plain")["metadata"]["labels"]
    with pytest.raises(UserError, match="node elsewhere was not found"):
        world.backend.set_node_type("elsewhere", "dgx")
    assert world.kube.get("jobs", "typed", NAMESPACE)["spec"]["template"]["spec"]["nodeSelector"] == {
        k.NODE_TYPE_LABEL: "dgx"}


def test_completions_with_parallelism_run_that_many_pods_at_once(world: World):
    world.kube.add_node("n1")
    world.backend.submit(spec("hpo", completions=3, parallelism=2))
    world.settle()
    running = [p for p in world.pods_of("team-a", "hpo") if p["status"].get("phase") == "Running"]
    assert len(running) == 2
    for pod in running:
        world.kube.kubelet.finish(NAMESPACE, pod["metadata"]["name"], 0)
    world.settle()
    left = [p for p in world.pods_of("team-a", "hpo") if p["status"].get("phase") == "Running"]
    assert len(left) == 1
    world.kube.kubelet.finish(NAMESPACE, left[0]["metadata"]["name"], 0)
    world.settle()
    assert world.backend.get_job("team-a", "hpo").status is JobStatus.SUCCEEDED


def test_what_a_cluster_cannot_take_is_refused_before_anything_is_created(world: World):
    with pytest.raises(UserError, match="starts with a letter"):
        world.backend.submit(spec("1st", ports=(parse_port("80"),)))
    with pytest.raises(UserError, match="--parallelism above 1 with GPUs"):
        world.backend.submit(spec("gpus", request=request_from_flags(gpu="1"), completions=2, parallelism=2))
    assert world.kube.objects("jobs", NAMESPACE) == [] and world.kube.objects("services", NAMESPACE) == []


def test_a_port_without_a_service_type_is_a_cluster_ip_service_for_port_forward(world: World):
    world.backend.submit(spec("web", ports=(parse_port("8888"),)))
    service = world.kube.get("services", "web", NAMESPACE)
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"][0]["port"] == 8888 and service["spec"]["ports"][0]["targetPort"] == 8888
