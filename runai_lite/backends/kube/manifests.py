"""The objects runai-lite creates, as plain dicts, and the requests it reads back from pods.

Pure functions: a `JobSpec` → a batch/v1 Job; an allocation → the pod's device ConfigMap; a GPU →
its reservation pod; an annotated pod → its `GpuRequest`. No Kubernetes client, no I/O.
"""

from __future__ import annotations

from typing import Any

from ...gpu.catalog import MIG_PROFILE_PATTERN
from ...model import GpuRequest, JobSpec, JobType, ServiceType
from ...units import MiB
from ..attempts import NOT_RUNNABLE
from . import conventions as k
from .meta import Meta


def job_manifest(spec: JobSpec, classes: k.PriorityClassNames = k.PriorityClassNames()) -> dict[str, Any]:
    """The batch/v1 Job for a submitted job.

    One pod at a time (a requeued job gets a fresh pod), `restartPolicy: Never` as the
    podFailurePolicy requires, a rule that ignores `DisruptionTarget` so that a preemption
    (an eviction) never counts against the backoff limit, and one that fails the Job at once when
    its command could not be run (exit 126 or 127), as the embedded mode does.
    """
    # The user's -l labels first, so that ours win (the CLI refuses our keys anyway).
    labels = {**dict(spec.labels), k.QUEUE_LABEL: spec.project, k.JOB_NAME_LABEL: spec.name,
              k.PRIORITY_LABEL: spec.type.priority_class}
    annotations = request_annotations(spec.request)
    if spec.user:
        annotations[k.USER_ANNOTATION] = spec.user
    container: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "envFrom": [{"configMapRef": {"name": k.job_configmap(spec.name)}}],
    }
    if spec.command:
        # Run:ai's rule: with `--command` the text replaces the image's entrypoint, else it is its arguments.
        container["command" if spec.replace_entrypoint else "args"] = list(spec.command)
    if spec.working_dir:
        container["workingDir"] = spec.working_dir
    if spec.env:
        container["env"] = [{"name": name, "value": value} for name, value in spec.env]
    resources = _resources(spec)
    if resources:
        container["resources"] = resources
    volumes, mounts = _volumes(spec)
    if mounts:
        container["volumeMounts"] = mounts
    if spec.ports:
        container["ports"] = [{"containerPort": p.container_port, "protocol": "TCP"} for p in spec.ports]
    pod_spec: dict[str, Any] = {
        "schedulerName": k.SCHEDULER_NAME,
        "priorityClassName": classes.of(spec.type),
        "restartPolicy": "Never",
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if spec.node_type is not None:
        pod_spec["nodeSelector"] = {k.NODE_TYPE_LABEL: spec.node_type}
    job_spec: dict[str, Any] = {
        "backoffLimit": 0 if spec.type is not JobType.TRAIN else spec.backoff_limit,
        "completions": spec.completions,
        "parallelism": spec.parallelism,
        "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            # the command was not found or not executable: a retry could not run it either
            {"action": "FailJob", "onExitCodes": {"operator": "In", "values": sorted(NOT_RUNNABLE)}},
        ]},
        "template": {"metadata": {"labels": labels, "annotations": annotations}, "spec": pod_spec},
    }
    if spec.ttl_after_finish_s is not None:
        job_spec["ttlSecondsAfterFinished"] = spec.ttl_after_finish_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": spec.name,
            "namespace": k.project_namespace(spec.project),
            "labels": labels,
            "annotations": {k.USER_ANNOTATION: spec.user} if spec.user else {},
        },
        "spec": job_spec,
    }


SHM_VOLUME = "dshm"  # Run:ai's name for the --large-shm volume


def _volumes(spec: JobSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the container's mounts: `-v` as hostPath volumes (Run:ai's meaning),
    `--pvc` as claims (a new claim is named after the job, `k.pvc_name`), `--large-shm` as a
    memory-backed emptyDir at /dev/shm."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, volume in enumerate(spec.volumes):
        volumes.append({"name": f"volume-{i}", "hostPath": {"path": volume.host_path}})
        mounts.append({"name": f"volume-{i}", "mountPath": volume.container_path, "readOnly": volume.read_only})
    for i, pvc in enumerate(spec.pvcs):
        claim = pvc.claim_name or k.pvc_name(spec.name, i)
        volumes.append({"name": f"pvc-{i}", "persistentVolumeClaim": {"claimName": claim, "readOnly": pvc.read_only}})
        mounts.append({"name": f"pvc-{i}", "mountPath": pvc.container_path, "readOnly": pvc.read_only})
    if spec.large_shm:
        volumes.append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}})
        mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    return volumes, mounts


def new_claims(spec: JobSpec, namespace: str, owner: dict[str, str]) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims `--pvc [CLASS]:SIZE:PATH` asks runai-lite to create, owned by the
    job's batch Job so that they go when it goes."""
    claims = []
    for i, pvc in enumerate(spec.pvcs):
        if pvc.claim_name is not None:
            continue
        claim: dict[str, Any] = {
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": k.pvc_name(spec.name, i), "namespace": namespace,
                         "labels": {k.JOB_NAME_LABEL: spec.name}, "ownerReferences": [owner]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": str(pvc.size_bytes)}}},
        }
        if pvc.storage_class is not None:
            claim["spec"]["storageClassName"] = pvc.storage_class
        claims.append(claim)
    return claims


def job_service(spec: JobSpec, namespace: str, owner: dict[str, str]) -> dict[str, Any] | None:
    """The Service `--port` asks for: of `--service-type` (ClusterIP by default, reached with
    `runai port-forward`), selecting the job's pods, owned by its batch Job (deleted with it)."""
    if not spec.ports:
        return None
    ports = []
    for p in spec.ports:
        port: dict[str, Any] = {"name": f"port-{p.container_port}", "protocol": "TCP",
                                "port": p.host_port or p.container_port, "targetPort": p.container_port}
        ports.append(port)
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": spec.name, "namespace": namespace, "labels": {k.JOB_NAME_LABEL: spec.name},
                     "ownerReferences": [owner]},
        "spec": {"type": (spec.service_type or ServiceType.CLUSTER_IP).value,
                 "selector": {k.JOB_NAME_LABEL: spec.name, k.QUEUE_LABEL: spec.project}, "ports": ports},
    }


def owner_reference(job: dict[str, Any]) -> dict[str, Any]:
    """An ownerReference to a created batch Job: what it owns is garbage-collected with it."""
    return {"apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"],
            "controller": False, "blockOwnerDeletion": False}


# Labels that say nothing of what the user asked: ours, and those the Job controller adds.
NOT_USER_LABELS = frozenset({k.QUEUE_LABEL, k.JOB_NAME_LABEL, k.PRIORITY_LABEL, "controller-uid", "job-name"})


def job_options(job: dict[str, Any], service: dict[str, Any] | None = None,
                claims: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """What a batch Job (and its Service and new claims) say about `JobSpec`'s host, storage,
    network, placement and lifetime fields: read from the objects as they are, so that what
    `runai describe` shows is what the cluster holds."""
    spec = job.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    container = (pod.get("containers") or [{}])[0]
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    volumes = {v.get("name"): v for v in pod.get("volumes") or ()}
    host_volumes, pvcs, large_shm = [], [], False
    for mount in container.get("volumeMounts") or ():
        volume = volumes.get(mount.get("name")) or {}
        read_only = bool(mount.get("readOnly"))
        if "hostPath" in volume:
            host_volumes.append({"host_path": volume["hostPath"].get("path", ""),
                                 "container_path": mount.get("mountPath", ""), "read_only": read_only})
        elif "persistentVolumeClaim" in volume:
            name = volume["persistentVolumeClaim"].get("claimName", "")
            claim = (claims or {}).get(name)
            if claim is None:
                pvcs.append({"claim_name": name, "container_path": mount.get("mountPath", ""), "read_only": read_only})
            else:
                storage = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
                pvcs.append({"storage_class": (claim.get("spec") or {}).get("storageClassName"),
                             "size_bytes": max(1, int(k.parse_quantity(storage))),
                             "container_path": mount.get("mountPath", ""), "read_only": read_only})
        elif (volume.get("emptyDir") or {}).get("medium") == "Memory" and mount.get("mountPath") == "/dev/shm":
            large_shm = True
    service_ports = {p.get("targetPort"): p.get("port") for p in ((service or {}).get("spec") or {}).get("ports") or ()}
    ports = [{"container_port": p["containerPort"],
              "host_port": None if service_ports.get(p["containerPort"]) in (None, p["containerPort"])
              else service_ports[p["containerPort"]]}
             for p in container.get("ports") or () if "containerPort" in p]
    labels = (job.get("metadata") or {}).get("labels") or {}
    return {
        "cpu_milli": round(k.parse_quantity(requests.get("cpu") or limits.get("cpu")) * 1000),
        "memory_mib": -(-int(k.parse_quantity(requests.get("memory") or limits.get("memory"))) // MiB),
        "cpu_limit_milli": round(k.parse_quantity(limits.get("cpu")) * 1000),
        "memory_limit_mib": -(-int(k.parse_quantity(limits.get("memory"))) // MiB),
        "volumes": host_volumes, "pvcs": pvcs, "ports": ports,
        "service_type": ((service or {}).get("spec") or {}).get("type"),
        "labels": tuple((key, value) for key, value in sorted(labels.items())
                        if key not in NOT_USER_LABELS and not key.startswith("batch.kubernetes.io/")),
        "node_type": (pod.get("nodeSelector") or {}).get(k.NODE_TYPE_LABEL),
        "ttl_after_finish_s": spec.get("ttlSecondsAfterFinished"),
        "large_shm": large_shm,
        "completions": spec.get("completions") or 1,
        "parallelism": spec.get("parallelism") or 1,
    }


def _resources(spec: JobSpec) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.cpu_milli:
        requests["cpu"] = f"{spec.cpu_milli}m"
    if spec.memory_mib:
        requests["memory"] = f"{spec.memory_mib}Mi"
    if spec.cpu_limit_milli:
        limits["cpu"] = f"{spec.cpu_limit_milli}m"
    if spec.memory_limit_mib:
        limits["memory"] = f"{spec.memory_limit_mib}Mi"
    if spec.request is not None and spec.request.gpus is not None:
        # Whole GPUs go through the device plugin, as with Run:ai; shares and MIG instances are
        # handed over as device UUIDs in the pod's ConfigMap.
        limits[k.GPU_RESOURCE] = str(spec.request.gpus)
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def request_annotations(request: GpuRequest | None) -> dict[str, str]:
    """The pod annotations that carry a fraction, memory or MIG request (Run:ai/KAI names)."""
    if request is None or request.gpus is not None:
        return {}
    if request.fraction is not None:
        return {k.GPU_FRACTION: f"{request.fraction:g}"}
    if request.memory_bytes is not None:
        return {k.GPU_MEMORY: str(-(-request.memory_bytes // MiB)), k.GPU_MEMORY_BYTES: str(request.memory_bytes)}
    return {k.MIG_PROFILE: str(request.mig_profile)}


FRACTION_DEVICES = "gpu-fraction-num-devices"  # KAI's multi-device fractions


class InvalidRequest(ValueError):
    """A pod's GPU annotations cannot be read as one request."""


def pod_request(pod: dict[str, Any]) -> GpuRequest | None:
    """The GPU request of a pod: ours, or one written by hand with Run:ai/KAI annotations.

    `gpu-memory` is MiB (as KAI reads it) unless our exact-bytes annotation is there too.
    Raises `InvalidRequest` with a message fit for an Event.
    """
    annotations = Meta(pod).annotations
    if annotations.get(FRACTION_DEVICES, "1") != "1":
        raise InvalidRequest(f"{FRACTION_DEVICES}: fractions of several GPUs are not supported; ask for one")
    found: list[GpuRequest] = []
    try:
        if k.GPU_FRACTION in annotations:
            found.append(GpuRequest(fraction=float(annotations[k.GPU_FRACTION])))
        if k.GPU_MEMORY_BYTES in annotations:
            found.append(GpuRequest(memory_bytes=int(annotations[k.GPU_MEMORY_BYTES])))
        elif k.GPU_MEMORY in annotations:
            found.append(GpuRequest(memory_bytes=int(annotations[k.GPU_MEMORY]) * MiB))
        profiles = {annotations[k.MIG_PROFILE]} if k.MIG_PROFILE in annotations else set()
        profiles |= {key.removeprefix(k.RUNAI_MIG_PREFIX) for key, value in annotations.items()
                     if key.startswith(k.RUNAI_MIG_PREFIX) and value == "1"
                     and MIG_PROFILE_PATTERN.match(key.removeprefix(k.RUNAI_MIG_PREFIX))}
        limits = mig_limits(pod)
        if any(count > 1 for count in limits.values()):
            raise InvalidRequest("asks the device plugin for more than one MIG device; a pod gets one MIG instance")
        profiles |= set(limits)
        if len(profiles) > 1:
            raise InvalidRequest(f"asks for several MIG profiles: {', '.join(sorted(profiles))}")
        found.extend(GpuRequest(mig_profile=p) for p in profiles)
        whole = whole_gpus(pod)
        if whole:
            found.append(GpuRequest(gpus=whole))
    except (ValueError, TypeError) as error:
        if isinstance(error, InvalidRequest):
            raise
        raise InvalidRequest(f"unreadable GPU request annotations: {error}".splitlines()[0]) from None
    if len(found) > 1:
        raise InvalidRequest("asks for GPUs in more than one way (gpu-fraction, gpu-memory, MIG profile, "
                             "nvidia.com/gpu); use exactly one")
    return found[0] if found else None


def whole_gpus(pod: dict[str, Any]) -> int:
    """The `nvidia.com/gpu` limits of a pod's containers."""
    total = 0
    for container in pod.get("spec", {}).get("containers") or []:
        limits = (container.get("resources") or {}).get("limits") or {}
        total += int(k.parse_quantity(limits.get(k.GPU_RESOURCE)))
    return total


def mig_limits(pod: dict[str, Any]) -> dict[str, int]:
    """The `nvidia.com/mig-<profile>` limits of a pod's containers (the device plugin's mixed
    strategy), by profile."""
    found: dict[str, int] = {}
    for container in pod.get("spec", {}).get("containers") or []:
        for key, value in ((container.get("resources") or {}).get("limits") or {}).items():
            profile = key.removeprefix(k.RUNAI_MIG_PREFIX)
            count = int(k.parse_quantity(value))
            if key.startswith(k.RUNAI_MIG_PREFIX) and count > 0 and MIG_PROFILE_PATTERN.match(profile):
                found[profile] = found.get(profile, 0) + count
    return found


def pod_job_type(pod: dict[str, Any], job: dict[str, Any] | None = None,
                 classes: k.PriorityClassNames = k.PriorityClassNames()) -> JobType:
    """The job type a pod runs as, checked against the priority class it claims.

    The type is the Run:ai CLI's `priorityClassName` label of the pod's batch Job (`runai submit`
    writes it), or of the pod itself when it was written by hand; train when there is none. The
    pod's `spec.priorityClassName` must be that type's class (or absent, for training), so a pod
    cannot take the `build` class's priority while the scheduler treats it as one type and the
    cluster as another. Raises `InvalidRequest` on a mismatch."""
    declared = Meta(job or pod).label(k.PRIORITY_LABEL)
    if declared and declared not in k.PRIORITY_CLASSES:
        raise InvalidRequest(f"label {k.PRIORITY_LABEL}={declared} is not a runai-lite job type; "
                             f"use one of {', '.join(k.PRIORITY_CLASSES)}")
    job_type = k.PRIORITY_CLASSES[declared] if declared else JobType.TRAIN
    claimed = (pod.get("spec") or {}).get("priorityClassName")
    if claimed != classes.of(job_type) and not (claimed is None and job_type is JobType.TRAIN):
        source = f"its Job {Meta(job).name}" if job else "the pod"
        raise InvalidRequest(
            f"priorityClassName {claimed or '(none)'} does not match the job type {job_type.value} "
            f"({source} is labelled {k.PRIORITY_LABEL}={declared or '(none)'}); a {job_type.value} job "
            f"runs with priorityClassName {classes.of(job_type)}")
    return job_type


# --------------------------------------------------------------------------------------------
# What the controller creates


MANAGED_BY = {"app.kubernetes.io/managed-by": "runai-lite"}


def device_configmap(name: str, namespace: str, env: dict[str, str], owner: dict[str, str] | None) -> dict[str, Any]:
    """The ConfigMap a pod's `envFrom` reads, owned by the pod's Job (or the pod) for clean-up."""
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "data": env,
    }
    if owner:
        body["metadata"]["ownerReferences"] = [{**owner, "controller": True, "blockOwnerDeletion": False}]
    return body


def is_device_configmap_of(configmap: dict[str, Any], owner: dict[str, str] | None) -> bool:
    """Whether an existing ConfigMap is the one runai-lite made for this owner (the Job, or the pod
    written by hand): only then may the controller rewrite it. Anything else of that name is the
    user's, and is left alone."""
    meta = Meta(configmap)
    return (owner is not None and all(meta.label(key) == value for key, value in MANAGED_BY.items())
            and any(ref.get("uid") == owner["uid"] for ref in meta.owner_references))


def reservation_pod(node: str, gpu_index: int, image: str, service_account: str = "runai-lite-reservation",
                    classes: k.PriorityClassNames = k.PriorityClassNames(),
                    runtime_class: str | None = None) -> dict[str, Any]:
    """The pod that holds a shared GPU for its fractions, so that other schedulers see it taken.

    It requests `nvidia.com/gpu: 1`, is pinned with `nodeName` (no scheduler involved), and runs
    `runai-lite reservation`, which writes the UUID the device plugin gave it into its own
    `run.ai/reserve_for_gpu_index` annotation. `runtime_class`: the RuntimeClass whose handler
    gives containers their GPUs (`nvidia`, where that is not the node's default runtime).
    """
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": k.reservation_pod_name(node, gpu_index),
            "namespace": k.RESERVATION_NAMESPACE,
            # the interactive (`build`) class, and its job-type label: the two go together (admission policy)
            "labels": {"app": k.RESERVATION_APP, k.GPU_GROUP_LABEL: k.gpu_group(node, gpu_index),
                       k.PRIORITY_LABEL: "build"},
            "annotations": {k.RESERVATION_NODE: node, k.RESERVATION_GPU: str(gpu_index),
                            "karpenter.sh/do-not-disrupt": "true"},
        },
        "spec": {
            "nodeName": node,
            "serviceAccountName": service_account,
            "priorityClassName": classes.of(JobType.INTERACTIVE),
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 1,
            "tolerations": [{"key": k.GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [{
                "name": "reservation",
                "image": image,
                "command": ["runai-lite", "reservation"],
                "env": [
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                ],
                "resources": {"requests": {k.GPU_RESOURCE: "1", "cpu": "1m", "memory": "32Mi"},
                              "limits": {k.GPU_RESOURCE: "1", "memory": "64Mi"}},
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "runAsUser": 65532,
                                    "capabilities": {"drop": ["ALL"]},
                                    "seccompProfile": {"type": "RuntimeDefault"}},  # PSS restricted
            }],
        },
    }
    if runtime_class:
        pod["spec"]["runtimeClassName"] = runtime_class
    return pod


def event(obj: dict[str, Any], reason: str, message: str, now: str, warning: bool = False) -> dict[str, Any]:
    """A core/v1 Event about `obj` (a Job or a pod) from the runai-lite scheduler."""
    meta = obj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {"apiVersion": obj.get("apiVersion", "v1"), "kind": obj.get("kind", "Pod"),
                           "name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "source": {"component": k.SCHEDULER_NAME},
        "reportingComponent": k.SCHEDULER_NAME,
        "reportingInstance": k.SCHEDULER_NAME,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
