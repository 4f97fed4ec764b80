"""`KubeBackend`: the researcher and administrator commands against a cluster in the kubeconfig.

Same records as the embedded backend (`JobInfo`, `NodeView`, `ProjectInfo`), read from the objects
the controller maintains: batch Jobs with their `runai-calculated-status` and pending reason, pods
with their allocation, nodes with their GPU inventory and MIG layouts. The `kubernetes` package
is loaded on the first call that talks to the cluster, never at import.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ...errors import NotFoundError, OperationalError, UserError
from ...gpu.fit import NEVER_FITS_EVENT, never_fits
from ...model import JobSpec, JobStatus, JobType
from ...submission.flags import SubmitFlags, SubmitReceipt
from ..api import (Event, FractionView, GpuView, JobInfo, JobOptions, JobUsage, MigInstanceView, NodeView,
                   ProjectInfo)
from ..attempts import Attempt, AttemptEnd, separator
from ..submission import submit_in_process
from ..summary import JobSummary
from . import conventions as k
from .cache import ListingReader
from .cluster import ClusterView, build_view, gpu_inventory, is_finished, node_gpu_models, product_model
from .enforcement import node_enforcement
from .manifests import (InvalidRequest, job_manifest, job_options, job_service, new_claims, owner_reference,
                        pod_request)
from .meta import Meta
from .rest import ApiError, core, group

if TYPE_CHECKING:
    from .client import KubeApi

FINISHED = {"Complete": JobStatus.SUCCEEDED, "Failed": JobStatus.FAILED}
# A pod's own env wins over its envFrom ConfigMap, and the NVIDIA runtime hands a container the GPUs
# this variable names: a job may not set it, or a fraction could take a whole machine's GPUs.
DEVICE_SELECTOR = "NVIDIA_VISIBLE_DEVICES"


class KubeBackend:
    name = "kubernetes"

    def __init__(self, context: str | None = None, api: KubeApi | None = None, kubeconfig: str | None = None):
        self.context = context
        self.kubeconfig = kubeconfig
        self._api = api
        self._priority_classes: k.PriorityClassNames | None = None

    @property
    def api(self) -> KubeApi:
        if self._api is None:
            from .client import KubeApi

            self._api = KubeApi.from_kubeconfig(self.context, self.kubeconfig)
        return self._api

    def current_user(self) -> str:
        return getpass.getuser()

    @property
    def priority_classes(self) -> k.PriorityClassNames:
        """The install's PriorityClass names, learnt from the classes (labelled with their job
        type; the chart lets every authenticated user read them)."""
        if self._priority_classes is None:
            try:
                found = k.PriorityClassNames.from_classes(self.api.list(
                    group("scheduling.k8s.io/v1", "priorityclasses"), label_selector=k.PRIORITY_CLASS_LABEL))
            except ApiError as error:
                if error.status != 403:
                    raise
                found = k.PriorityClassNames()  # may not look: an install by the default release is assumed
            if found is None:
                raise OperationalError(
                    f"runai-lite is not installed on this cluster (no PriorityClass labelled {k.PRIORITY_CLASS_LABEL})",
                    "install it: helm install runai-lite deploy/runai-lite -n runai-lite --create-namespace")
            self._priority_classes = found
        return self._priority_classes

    # -- jobs ----------------------------------------------------------------------------------

    def submit_flags(self, flags: SubmitFlags) -> SubmitReceipt:
        return submit_in_process(self, flags)

    def submit(self, spec: JobSpec) -> JobInfo:
        if any(name == DEVICE_SELECTOR for name, _ in spec.env):
            raise UserError(f"-e {DEVICE_SELECTOR}=... would choose the job's GPUs itself",
                            "drop it: runai-lite sets it to the GPU or MIG partition the job is given")
        _check_for_kubernetes(spec)
        self._project_namespace(spec.project)
        manifest = job_manifest(spec, self.priority_classes)
        namespace = manifest["metadata"]["namespace"]
        try:
            created = self.api.create(group("batch/v1", "jobs", namespace), manifest)
        except ApiError as error:
            if error.conflict:
                raise UserError(f"a job named {spec.name} already exists in project {spec.project}",
                                f"choose another name, or delete it with `runai delete job {spec.name} "
                                f"-p {spec.project}`") from None
            raise
        created.setdefault("kind", "Job")
        # What the job owns goes with it (the garbage collector; `delete_jobs` does not wait for it).
        owner = owner_reference(created)
        for claim in new_claims(spec, namespace, owner):
            self.api.create(core("persistentvolumeclaims", namespace), claim)
        service = job_service(spec, namespace, owner)
        if service is not None:
            self.api.create(core("services", namespace), service)
        return self._job_info(created, [], {}, events=self._never_fits_warning(spec))

    def _never_fits_warning(self, spec: JobSpec) -> tuple[Event, ...]:
        """Nodes come and go on a cluster, so a request no node could hold today is accepted, with
        a warning the CLI shows."""
        try:
            nodes = {Meta(n).name: node_gpu_models(n) for n in self.api.list(core("nodes"))}
        except ApiError:  # a researcher who may not list nodes gets no warning, and the job is in
            return ()
        refusal = never_fits(spec.request, nodes)
        if refusal is None:
            return ()
        return (Event(time=time.time(), kind=NEVER_FITS_EVENT,
                      message=f"{refusal.message}; it stays pending until such a node joins ({refusal.hint})"),)

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        namespace = self._project_namespace(project) if project else None
        jobs = self.api.list(group("batch/v1", "jobs", namespace), label_selector=k.JOB_NAME_LABEL)
        pods = self.api.list(core("pods", namespace), label_selector=k.JOB_NAME_LABEL)
        nodes = {n["metadata"]["name"]: n for n in self.api.list(core("nodes"))}
        infos = [self._job_info(job, _pods_of(job, pods), nodes, events=()) for job in jobs]
        return sorted(infos, key=lambda j: (j.project, j.submitted_at, j.name))

    def job_summaries(self, project: str | None) -> list[JobSummary]:
        return [job.summary() for job in self.list_jobs(project)]

    def get_job(self, project: str, name: str) -> JobInfo:
        namespace = self._project_namespace(project)
        job = self._get_job(project, namespace, name)
        pods = self._job_pods(job)
        nodes = {n["metadata"]["name"]: n for n in self.api.list(core("nodes"))}
        involved = {name, *(p["metadata"]["name"] for p in pods)}
        events = tuple(sorted(
            (Event(time=k.parse_time(e.get("lastTimestamp") or e.get("eventTime")
                                     or e["metadata"].get("creationTimestamp")) or 0.0,
                   kind=e.get("reason", ""), message=e.get("message", ""))
             for e in self.api.list(core("events", namespace))
             if (e.get("involvedObject") or {}).get("name") in involved),
            key=lambda e: e.time))
        owned = {kind: self.api.list(core(kind, namespace), label_selector=f"{k.JOB_NAME_LABEL}={name}")
                 for kind in ("services", "persistentvolumeclaims")}
        options = _options(job, next(iter(owned["services"]), None),
                           {c["metadata"]["name"]: c for c in owned["persistentvolumeclaims"]})
        return self._job_info(job, pods, nodes, events).model_copy(update={"options": options})

    def delete_jobs(self, project: str, names: list[str] | None) -> list[str]:
        namespace = self._project_namespace(project)
        if names is None:
            names = [j["metadata"]["name"]
                     for j in self.api.list(group("batch/v1", "jobs", namespace), label_selector=k.JOB_NAME_LABEL)]
        else:
            missing = [n for n in names if self.api.get_or_none(group("batch/v1", "jobs", namespace, n)) is None]
            if missing:
                raise _job_not_found(project, missing)
        for name in names:
            self.api.delete(group("batch/v1", "jobs", namespace, name), {"propagationPolicy": "Background"})
            # The garbage collector removes these too; deleting them here frees the GPUs at once.
            for pod in self.api.list(core("pods", namespace), label_selector=f"{k.JOB_NAME_LABEL}={name}"):
                self.api.delete(core("pods", namespace, pod["metadata"]["name"]))
            self.api.delete(core("configmaps", namespace, k.job_configmap(name)))
            for kind in ("services", "persistentvolumeclaims"):
                for owned in self.api.list(core(kind, namespace), label_selector=f"{k.JOB_NAME_LABEL}={name}"):
                    self.api.delete(core(kind, namespace, owned["metadata"]["name"]))
        return names

    def suspend_job(self, project: str, name: str) -> JobInfo:
        """`spec.suspend: true`: the Job controller deletes the Job's pods (not counted as failures)
        and the controller frees what they held once they are gone."""
        namespace = self._project_namespace(project)
        job = self._get_job(project, namespace, name)
        finished = _finished_status(job)
        if finished is not None:
            raise UserError(f"job {name} has {finished.value}: only a Pending or Running job can be suspended",
                            f"submit it again, or delete it: runai delete job {name} -p {project}")
        if job["spec"].get("suspend"):
            raise UserError(f"job {name} is already suspended", f"resume it with `runai resume {name} -p {project}`")
        self.api.merge_patch(group("batch/v1", "jobs", namespace, name), {"spec": {"suspend": True}})
        return self.get_job(project, name)

    def resume_job(self, project: str, name: str) -> JobInfo:
        namespace = self._project_namespace(project)
        job = self._get_job(project, namespace, name)
        if not job["spec"].get("suspend") or _finished_status(job) is not None:
            status = _finished_status(job) or JobStatus.PENDING
            raise UserError(f"job {name} is {status.value if status.terminal else 'not suspended'}, not Suspended",
                            "only a suspended job can be resumed")
        self.api.merge_patch(group("batch/v1", "jobs", namespace, name), {"spec": {"suspend": False}})
        return self.get_job(project, name)

    def port_opener(self, project: str, name: str, port: int) -> Callable[[], Any]:
        """Streams to the port of the job's running pod (pods/portforward, as `kubectl port-forward`)."""
        namespace = self._project_namespace(project)
        pod = self._current_pod(project, namespace, name)
        if (pod.get("status") or {}).get("phase") != "Running":
            raise UserError(f"job {name} is not running (its pod is {pod['status'].get('phase')})",
                            "port-forward reaches a running job only")
        pod_name = pod["metadata"]["name"]
        return lambda: self.api.pod_port(namespace, pod_name, port)

    def top_jobs(self, project: str | None) -> list[JobUsage]:
        """What each unfinished Job holds; what its pod uses on the GPU is not measured from here
        (that is the node's NVML, e.g. through NVIDIA's DCGM exporter)."""
        jobs = [j for j in self.list_jobs(project) if not j.status.terminal]
        return [JobUsage(job=j, note="not measured on Kubernetes: GPU use is the node's (e.g. the DCGM exporter)"
                         if j.allocation is not None else None) for j in jobs]

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None,
             attempt: int | None = None) -> Iterator[str]:
        """Each pod is an attempt: the pods the cluster still has, by attempt number, each after its
        separator line (a preempted or suspended attempt's pod is deleted, its output with it: the
        numbers then start later or leave a gap)."""
        namespace = self._project_namespace(project)
        attempts = _numbered(self._started_pods(project, namespace, name))
        if attempt is not None:
            if follow:
                raise UserError("--attempt shows one attempt's output as it is now; it cannot be followed",
                                f"drop -f, or follow the whole log: runai logs {name} -p {project} -f")
            pod = dict(attempts).get(attempt)
            if pod is None:
                kept = ", ".join(str(number) for number, _ in attempts)
                raise UserError(f"job {name} has no attempt {attempt} the cluster keeps: it keeps the pods of "
                                f"attempt{'s' if len(attempts) > 1 else ''} {kept} (a preempted or suspended "
                                "attempt's pod is deleted)", f"see them with `runai describe job {name} -p {project}`")
            yield from self._pod_log(namespace, pod, False, tail)
            return
        if tail is not None:
            attempts = attempts[-1:]
        before: tuple[int, dict[str, Any]] | None = None
        for number, pod in attempts:
            if tail is None and number > 1:
                if before is not None and before[0] == number - 1:
                    yield separator(number, _pod_attempt(before[1], before[0]))
                else:
                    yield separator(number, None, f"the pod of attempt {number - 1} is gone")
            yield from self._pod_log(namespace, pod, follow and pod is attempts[-1][1], tail)
            before = (number, pod)

    def _pod_log(self, namespace: str, pod: dict[str, Any], follow: bool, tail: int | None) -> Iterator[str]:
        query = {"follow": "true" if follow else None, "tailLines": tail}
        yield from self.api.stream_lines(core("pods", namespace, pod["metadata"]["name"], "log"), query)

    def exec(self, project: str, name: str, argv: list[str], tty: bool = False, stdin: bool = False) -> int:
        if not argv:
            raise UserError("nothing to run", f"e.g. runai exec {name} -- nvidia-smi")
        namespace = self._project_namespace(project)
        pod = self._current_pod(project, namespace, name)
        pod_name = pod["metadata"]["name"]
        kubectl = shutil.which("kubectl")
        if (tty or stdin) and kubectl:
            # An interactive terminal (raw mode, resizes, stdin) is what kubectl does well.
            command = [kubectl]
            if self.kubeconfig:
                command += ["--kubeconfig", self.kubeconfig]
            if self.context:
                command += ["--context", self.context]
            flags = "-" + "i" * stdin + "t" * tty
            command += ["exec", flags, "-n", namespace, pod_name, "--", *argv]
            return subprocess.call(command, stdin=None if stdin else subprocess.DEVNULL)
        if tty or stdin:
            print("kubectl is not installed: running without a terminal or input", file=sys.stderr)
        return self.api.exec_in_pod(namespace, pod_name, argv)

    def _get_job(self, project: str, namespace: str, name: str) -> dict[str, Any]:
        job = self.api.get_or_none(group("batch/v1", "jobs", namespace, name))
        if job is None:
            raise _job_not_found(project, [name])
        return job

    def _job_pods(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        meta = job["metadata"]
        return _pods_of(job, self.api.list(core("pods", meta["namespace"]),
                                           label_selector=f"{k.JOB_NAME_LABEL}={meta['name']}"))

    def _current_pod(self, project: str, namespace: str, name: str) -> dict[str, Any]:
        return self._started_pods(project, namespace, name)[-1]

    def _started_pods(self, project: str, namespace: str, name: str) -> list[dict[str, Any]]:
        pods = self._job_pods(self._get_job(project, namespace, name))
        started = [p for p in pods if (p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")]
        if not started:
            raise UserError(f"job {name} has not started yet",
                            f"see why with `runai describe job {name} -p {project}`")
        return started

    # -- projects ------------------------------------------------------------------------------

    def list_projects(self) -> list[ProjectInfo]:
        """Projects with their quota and usage. A user whose RBAC does not allow reading every pod
        and node (a researcher bound to a few namespaces) still gets the projects, without usage."""
        try:
            view = self._view()
        except ApiError as error:
            if error.status != 403:
                raise
            namespaces = self.api.list(core("namespaces"), label_selector=k.QUEUE_LABEL)
            return sorted((ProjectInfo(name=ns["metadata"]["labels"][k.QUEUE_LABEL], deserved_gpus=k.parse_deserved(
                Meta(ns).annotation(k.DESERVED_GPUS))) for ns in namespaces),
                key=lambda p: p.name)
        usage: dict[str, ProjectInfo] = {}
        for job in view.snapshot.jobs:
            held = usage.get(job.project) or ProjectInfo(name=job.project, deserved_gpus=0)
            running = job.allocation is not None
            usage[job.project] = held.model_copy(update={
                "allocated_gpus": held.allocated_gpus + (job.allocation.gpus if job.allocation else 0),
                "running": held.running + running, "pending": held.pending + (not running)})
        linked = set(view.projects_by_namespace.values())
        return [(usage.get(p.name) or ProjectInfo(name=p.name, deserved_gpus=0)).model_copy(
                    update={"deserved_gpus": p.deserved_gpus})
                for p in view.snapshot.projects if p.name in linked]

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo:
        """Create namespace `runai-<name>` labelled `runai/queue=<name>`; an existing namespace of that
        name is linked (labelled) and its quota updated, as `kubectl label ns` does in Run:ai."""
        k.check_project_name(name)
        namespace = k.project_namespace(name)
        metadata = {"labels": {k.QUEUE_LABEL: name}, "annotations": {k.DESERVED_GPUS: f"{deserved_gpus:g}"}}
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, **metadata}}
        if not self.api.create_if_absent(core("namespaces"), body):
            existing = self.api.get(core("namespaces", name=namespace))
            queue = Meta(existing).label(k.QUEUE_LABEL)
            if queue not in (None, name):
                raise UserError(f"namespace {namespace} already belongs to project {queue}",
                                "choose another project name")
            self.api.merge_patch(core("namespaces", name=namespace), {"metadata": metadata})
        self._grant_device_configmaps(namespace)
        return ProjectInfo(name=name, deserved_gpus=deserved_gpus)

    def _grant_device_configmaps(self, namespace: str) -> None:
        """Bind the install's device-ConfigMap role to its controller in the project's namespace: the
        controller may write ConfigMaps in project namespaces only. Before runai-lite is installed
        there is no role to bind; `project create` again links the namespace then."""
        roles = self.api.list(group("rbac.authorization.k8s.io/v1", "clusterroles"),
                              label_selector=f"app.kubernetes.io/component={k.DEVICE_CONFIGMAPS_COMPONENT}")
        for role in roles:
            account_namespace, _, account = (Meta(role).annotation(k.CONTROLLER_ACCOUNT) or "").partition("/")
            if not account:
                continue
            binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": Meta(role).name, "namespace": namespace,
                                    "labels": {"app.kubernetes.io/managed-by": "runai-lite"}},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                   "name": Meta(role).name},
                       "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_namespace}]}
            self.api.create_if_absent(group("rbac.authorization.k8s.io/v1", "rolebindings", namespace), binding)

    def delete_project(self, name: str) -> None:
        namespace = self._project_namespace(name)
        jobs = self.api.list(group("batch/v1", "jobs", namespace), label_selector=k.JOB_NAME_LABEL)
        active = [j["metadata"]["name"] for j in jobs if _finished_status(j) is None]
        if active:
            raise UserError(f"project {name} still has {len(active)} unfinished job(s): {', '.join(sorted(active))}",
                            f"delete them first with `runai delete job --all -p {name}`")
        self.api.delete(core("namespaces", name=namespace))

    def _project_namespace(self, project: str) -> str:
        namespace = k.project_namespace(project)
        found = self.api.list(core("namespaces"), label_selector=f"{k.QUEUE_LABEL}={project}")
        if not found:
            raise NotFoundError(f"project {project} was not found",
                                "run `runai list projects` to view all available projects")
        names = [n["metadata"]["name"] for n in found]
        return namespace if namespace in names else names[0]

    # -- nodes ---------------------------------------------------------------------------------

    def list_nodes(self) -> list[NodeView]:
        view = self._view()
        names = {j.id: f"{j.project}/{j.name}" for j in view.snapshot.jobs}
        result = []
        for node in view.snapshot.nodes:
            if not node.gpus:
                continue
            actual = view.actual.get(node.name, {})
            mechanism, _ = node_enforcement(view.nodes[node.name])
            gpus = []
            for gpu in node.gpus:
                holders = [j for j in view.snapshot.jobs if j.allocation and j.allocation.node == node.name
                           and gpu.index in j.allocation.gpu_indices]
                # A partition of the layout not made yet is "creating" when a pod waits for it; an
                # idle one that vanished (not made again until claimed) stays "idle".
                required = {i["start"] for i in view.desired.get(node.name, {}).get(gpu.index, []) if i.get("required")}
                instances = [MigInstanceView(profile=m.profile, start=m.start, size=m.size, uuid=m.uuid,
                                             state="creating" if not m.uuid and m.start in required
                                             else "used" if m.job else "idle",
                                             job=names.get(m.job) if m.job else None) for m in gpu.mig_instances]
                wanted = {(m.profile, m.start) for m in gpu.mig_instances}
                instances += [MigInstanceView(profile=a["profile"], start=a["start"], size=int(a.get("size") or 1),
                                              uuid=a.get("uuid"), state="destroying")
                              for a in actual.get(gpu.index, []) if (a["profile"], a["start"]) not in wanted]
                model = _model(gpu.model)
                gpus.append(GpuView(
                    index=gpu.index, uuid=gpu.uuid, model=gpu.model, memory_mib=gpu.memory_mib,
                    simulated=gpu.simulated, dynamic_mig=gpu.dynamic_mig, mig_enabled=gpu.mig_enabled,
                    memory_slices=model.memory_slices if model else 0,
                    mig_instances=tuple(sorted(instances, key=lambda m: m.start)),
                    fractions=tuple(FractionView(job=names[j.id], share_milli=j.allocation.share_milli)
                                    for j in holders if j.allocation and j.allocation.kind == "fraction"),
                    whole_job=next((names[j.id] for j in holders if j.allocation and j.allocation.kind == "gpu"), None),
                    enforcement=mechanism.value if not gpu.dynamic_mig else "mig"))
            result.append(NodeView(name=node.name, gpus=tuple(gpus)))
        return result

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        view = self._view()
        obj = view.nodes.get(node)
        if obj is None:
            raise NotFoundError(f"node {node} was not found", "run `runai list nodes` to see the cluster's nodes")
        path = core("nodes", name=node)
        if not enabled:
            users = sorted(f"{j.project}/{j.name}" for j in view.snapshot.jobs
                           if j.allocation and j.allocation.node == node and j.allocation.kind == "mig")
            if users:
                raise UserError(f"node {node} still runs MIG jobs: {', '.join(users)}",
                                "delete them, or wait for them to finish, before removing the dynamic-MIG role")
            self.api.merge_patch(path, {"metadata": {
                "labels": {k.DYNAMIC_MIG_LABEL: None, k.MIG_ENABLED_LABEL: None},
                "annotations": {k.MIG_DESIRED: None}}})
            return
        _check_mig_mode(obj)
        self.api.merge_patch(path, {"metadata": {"labels": {k.DYNAMIC_MIG_LABEL: "true", k.MIG_ENABLED_LABEL: "true"}}})

    def set_node_type(self, node: str, node_type: str | None) -> None:
        if self.api.get_or_none(core("nodes", name=node)) is None:
            raise NotFoundError(f"node {node} was not found", "run `runai list nodes` to see the cluster's nodes")
        self.api.merge_patch(core("nodes", name=node), {"metadata": {"labels": {k.NODE_TYPE_LABEL: node_type}}})

    # -- reading -------------------------------------------------------------------------------

    def _view(self) -> ClusterView:
        return build_view(ListingReader(self.api, allocations_required=False).read_objects(), self.priority_classes)

    def _job_info(self, job: dict[str, Any], pods: list[dict[str, Any]], nodes: dict[str, dict[str, Any]],
                  events: tuple[Event, ...]) -> JobInfo:
        meta = job["metadata"]
        annotations = Meta(job).annotations
        labels = Meta(job).labels
        template = job["spec"]["template"]
        container = (template["spec"].get("containers") or [{}])[0]
        status = job.get("status") or {}
        live = [p for p in pods if not is_finished(p) and not p["metadata"].get("deletionTimestamp")]
        current = live[-1] if live else None
        allocation = k.decode_allocation(Meta(current).annotation(k.ALLOCATION)) if current else None
        job_status = (_finished_status(job) or (JobStatus.SUSPENDED if job["spec"].get("suspend") else None)
                      or _status(annotations.get(k.STATUS), current, allocation))
        if job_status is not JobStatus.RUNNING:
            allocation = None  # claimed but not started (waiting for its device) is not allocated yet
        try:
            request = pod_request({"metadata": template.get("metadata") or {}, "spec": template["spec"]})
        except InvalidRequest:
            request = None
        node = nodes.get(allocation.node) if allocation else None
        enforcement = memory_limit = None
        if allocation is not None and allocation.kind == "fraction":
            enforcement = node_enforcement(node)[0].value if node else None
            memory_limit = allocation.memory_mib
        elif allocation is not None and allocation.kind == "mig":
            enforcement, memory_limit = "mig", allocation.memory_mib
        last = pods[-1] if pods else None
        return JobInfo(
            name=meta["name"],
            project=labels.get(k.QUEUE_LABEL) or meta["namespace"].removeprefix(k.PROJECT_PREFIX),
            type=k.PRIORITY_CLASSES.get(labels.get(k.PRIORITY_LABEL, ""), JobType.TRAIN),
            status=job_status,
            image=container.get("image", ""),
            user=annotations.get(k.USER_ANNOTATION, ""),
            command=tuple(container.get("command") or ()) + tuple(container.get("args") or ()),
            working_dir=container.get("workingDir"),
            submitted_at=k.parse_time(meta.get("creationTimestamp")) or 0.0,
            started_at=_started_at(job_status, current, status),
            finished_at=k.parse_time(status.get("completionTime")) or _failed_time(job),
            request=request,
            allocation=allocation,
            pending_reason=annotations.get(k.PENDING_REASON) if job_status is JobStatus.PENDING else None,
            exit_code=_exit_code(last) if job_status.terminal else None,
            attempts=int(status.get("failed") or 0) + int(status.get("succeeded") or 0) + int(status.get("active") or 0),
            backoff_limit=int(job["spec"].get("backoffLimit") or 0),
            attempt_history=tuple(_pod_attempt(pod, number) for number, pod in _numbered(
                [p for p in pods if (p.get("status") or {}).get("phase") in ("Running", "Succeeded", "Failed")])),
            enforcement=enforcement,
            memory_limit_mib=memory_limit,
            ran_on=((last.get("spec") or {}).get("nodeName") if last is not None and job_status.terminal else None),
            simulated=any(g.get("simulated") for g in gpu_inventory(node)) if node else False,
            events=events,
        )


def _options(job: dict[str, Any], service: dict[str, Any] | None, claims: dict[str, dict[str, Any]]) -> JobOptions:
    """The job's options as its objects hold them; none when the objects say something no
    `runai submit` could (a Job edited by hand)."""
    from pydantic import ValidationError

    try:
        return JobOptions(**job_options(job, service, claims))
    except ValidationError:
        return JobOptions()


def _check_for_kubernetes(spec: JobSpec) -> None:
    """What a cluster cannot take from this job's flags (exit 2 before anything is created)."""
    if spec.ports and not spec.name[0].isalpha():
        raise UserError(f"--port needs a job name that starts with a letter on Kubernetes: its Service is named "
                        f"after the job, and {spec.name!r} is no DNS-1035 label", f"e.g. job-{spec.name}"[:63])
    if spec.parallelism > 1 and spec.request is not None:
        raise UserError("--parallelism above 1 with GPUs is not supported: the pods of one job share its device "
                        "ConfigMap, so each could be handed only one device",
                        "submit one GPU job per parallel run (e.g. with --name-prefix), or use --completions alone")


def _job_not_found(project: str, names: list[str]) -> NotFoundError:
    return NotFoundError(f"job {', '.join(names)} was not found in project {project}",
                         f"run `runai list jobs -p {project}` to see its jobs")


def _pods_of(job: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The job's pods, oldest first (by owner uid when the pods carry one, else by the job label)."""
    uid = job["metadata"].get("uid")
    name = job["metadata"]["name"]
    namespace = job["metadata"]["namespace"]

    def owned(pod: dict[str, Any]) -> bool:
        refs = pod["metadata"].get("ownerReferences") or []
        if refs and uid:
            return any(r.get("uid") == uid for r in refs)
        return Meta(pod).label(k.JOB_NAME_LABEL) == name

    mine = [p for p in pods if p["metadata"].get("namespace") == namespace and owned(p)]
    return sorted(mine, key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]))


def _finished_status(job: dict[str, Any]) -> JobStatus | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in FINISHED:
            return FINISHED[condition["type"]]
    return None


def _status(annotation: str | None, pod: dict[str, Any] | None, allocation: Any) -> JobStatus:
    """Running once the pod runs (or is bound with its allocation: it is starting); Preempted between
    an eviction and the Job's replacement pod; Pending otherwise."""
    if pod is not None and ((pod.get("status") or {}).get("phase") == "Running"
                            or (allocation is not None and annotation == JobStatus.RUNNING.value)):
        return JobStatus.RUNNING
    if pod is None and annotation == JobStatus.PREEMPTED.value:
        return JobStatus.PREEMPTED
    return JobStatus.PENDING


def _started_at(job_status: JobStatus, pod: dict[str, Any] | None, status: dict[str, Any]) -> float | None:
    """When the running pod was bound; for a finished job, when the Job started; None while pending."""
    if job_status is JobStatus.RUNNING and pod is not None:
        bound = Meta(pod).annotation(k.BOUND_AT)
        return k.parse_time(bound or (pod.get("status") or {}).get("startTime"))
    if job_status.terminal:
        return k.parse_time(status.get("startTime"))
    return None


def _failed_time(job: dict[str, Any]) -> float | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return k.parse_time(condition.get("lastTransitionTime"))
    return None


def _numbered(pods: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """Started pods with their attempt numbers, in order: the number the controller gave each when
    it bound it, else (a pod bound by an older controller) its place among them."""
    return sorted(((k.attempt_number(pod, k.ATTEMPT) or place, pod) for place, pod in enumerate(pods, start=1)),
                  key=lambda numbered: numbered[0])


def _pod_attempt(pod: dict[str, Any], number: int) -> Attempt:
    """A started pod as an attempt: how it ended, from its phase, its DisruptionTarget condition (an
    eviction: a preemption) and its container's exit."""
    status = pod.get("status") or {}
    phase = status.get("phase")
    code = _exit_code(pod)
    terminated = next((s["state"]["terminated"] for s in status.get("containerStatuses") or []
                       if (s.get("state") or {}).get("terminated")), {})
    disrupted = any(c.get("type") == "DisruptionTarget" and c.get("status") == "True"
                    for c in status.get("conditions") or [])
    outcome = (None if phase == "Running" else AttemptEnd.PREEMPTED if disrupted
               else AttemptEnd.SUCCEEDED if phase == "Succeeded" else AttemptEnd.FAILED)
    return Attempt(number=number, started_at=k.parse_time(Meta(pod).annotation(k.BOUND_AT) or status.get("startTime")),
                   ended_at=k.parse_time(terminated.get("finishedAt")) if outcome else None,
                   exit_code=code if outcome else None, outcome=outcome)


def _exit_code(pod: dict[str, Any] | None) -> int | None:
    for state in ((pod or {}).get("status") or {}).get("containerStatuses") or []:
        terminated = (state.get("state") or {}).get("terminated")
        if terminated and "exitCode" in terminated:
            return int(terminated["exitCode"])
    return None


def _model(name: str):
    from ...gpu.catalog import default_catalog

    return default_catalog().find(name)


def _check_mig_mode(node: dict[str, Any]) -> None:
    """Refuse, with what to do, when the agent reports MIG mode off on the node's MIG-capable GPUs;
    without a report yet, the GPU product label must name a MIG-capable model."""
    name = node["metadata"]["name"]
    inventory = gpu_inventory(node)
    if inventory:
        capable = [g for g in inventory if g.get("mig_capable")]
        if not capable:
            raise UserError(f"node {name} has no MIG-capable GPU",
                            "dynamic MIG needs A100, A30, H100 or H200 GPUs")
        off = [str(g["index"]) for g in capable if not g.get("mig_enabled")]
        if off:
            raise UserError(
                f"MIG mode is off on GPU {', '.join(off)} of node {name} (as its runai-lite agent reports)",
                f"enable it on the node with `nvidia-smi -i {','.join(off)} -mig 1` (then reset the GPU or reboot), "
                "and run this command again")
        return
    labels = Meta(node).labels
    product = labels.get(k.GPU_PRODUCT_LABEL)
    model = product_model(product) if product else None
    if labels.get(k.MIG_CAPABLE_LABEL) != "true" and (model is None or not model.mig_capable):
        raise UserError(
            f"node {name} does not show a MIG-capable GPU (label {k.GPU_PRODUCT_LABEL}={product or 'missing'}) "
            "and no runai-lite agent has reported its GPUs",
            "install the NVIDIA GPU operator's feature discovery, or check the node's GPUs with nvidia-smi")

