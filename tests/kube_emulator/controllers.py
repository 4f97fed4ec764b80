"""Explicit stand-ins for the cluster components the emulator does not run by itself: the Job
controller and the kubelet. Nothing happens until a test calls them, so every test decides when pods
appear, start, finish or go.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .errors import ApiError
from .store import TERMINAL_POD_PHASES, Obj

if TYPE_CHECKING:
    from .emulator import KubeEmulator


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def _has_condition(pod: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _phase(pod: Obj) -> str | None:
    return (pod.get("status") or {}).get("phase")


def ignored_by_failure_policy(job: Obj, pod: Obj) -> bool:
    """Whether the Job's podFailurePolicy says to ignore this failed pod (an `Ignore` rule on a pod condition,
    e.g. DisruptionTarget for a preemption)."""
    for rule in ((job.get("spec") or {}).get("podFailurePolicy") or {}).get("rules") or []:
        if rule.get("action") != "Ignore":
            continue
        if any(_has_condition(pod, cond.get("type", "")) for cond in rule.get("onPodConditions") or []):
            return True
    return False


class JobController:
    """`sync()` does one pass of the batch/v1 Job controller: it creates the missing pods from each Job's
    template (generateName `<job>-`, the template's labels, a controller ownerReference) and writes the
    Job's status (active/succeeded/failed, startTime, Complete and Failed conditions).

    Deleted pods are simply gone (no job-tracking finalizer), so an evicted pod is not counted as failed
    whatever the podFailurePolicy; a pod that failed in place is counted unless an Ignore rule matches.
    """

    def __init__(self, emulator: "KubeEmulator"):
        self.emulator = emulator

    def sync(self, namespace: str | None = None) -> list[str]:
        """One pass over every Job (in one namespace or all); returns the names of the pods it created."""
        created: list[str] = []
        for job in self.emulator.objects("jobs.batch", namespace):
            created += self._sync_job(job)
        return created

    def _sync_job(self, job: Obj) -> list[str]:
        spec, status, meta = job.get("spec") or {}, job.get("status") or {}, job["metadata"]
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in status.get("conditions") or []):
            return []
        pods = [p for p in self.emulator.objects("pods", meta["namespace"]) if _owned_by(p, meta["uid"])]
        active = [p for p in pods
                  if _phase(p) not in TERMINAL_POD_PHASES and not p["metadata"].get("deletionTimestamp")]
        succeeded = sum(1 for p in pods if _phase(p) == "Succeeded")
        failed = sum(1 for p in pods if _phase(p) == "Failed" and not ignored_by_failure_policy(job, p))
        ignored = [p for p in pods if _phase(p) == "Failed" and ignored_by_failure_policy(job, p)]
        for pod in ignored:  # an ignored failure is replaced, as the real controller does
            self.emulator.delete("pods", pod["metadata"]["name"], meta["namespace"])
        created: list[str] = []
        completions = spec.get("completions", 1)
        backoff_failed = failed > spec.get("backoffLimit", 6)
        if not spec.get("suspend") and not backoff_failed:
            wanted = min(spec.get("parallelism", 1), completions - succeeded) - len(active)
            for _ in range(max(wanted, 0)):
                pod = self._create_pod(job)
                if pod is not None:
                    created.append(pod["metadata"]["name"])
        now = self.emulator.store.now()
        conditions = list(status.get("conditions") or [])
        if succeeded >= completions:
            conditions.append({"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now})
        elif backoff_failed:
            conditions.append({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                               "message": "Job has reached the specified backoff limit",
                               "lastProbeTime": now, "lastTransitionTime": now})
            for pod in active:
                self.emulator.delete("pods", pod["metadata"]["name"], meta["namespace"])
        new_status = {**status, "active": len(active) + len(created) if not backoff_failed else 0,
                      "succeeded": succeeded, "failed": failed, "conditions": conditions}
        if not spec.get("suspend"):
            new_status.setdefault("startTime", now)
        if succeeded >= completions:
            new_status["completionTime"] = now
        # the API omits empty counters and lists (omitempty)
        new_status = {k: v for k, v in new_status.items() if v not in ([], None, 0)}
        self.emulator.mutate("jobs.batch", meta["name"], lambda j: j.__setitem__("status", new_status),
                             meta["namespace"])
        return created

    def _create_pod(self, job: Obj) -> Obj | None:
        meta, template = job["metadata"], copy.deepcopy((job.get("spec") or {}).get("template") or {})
        tmeta = template.get("metadata") or {}
        pod = {
            "metadata": {
                "generateName": f"{meta['name']}-",
                "namespace": meta["namespace"],
                "labels": tmeta.get("labels") or {},
                "annotations": tmeta.get("annotations") or {},
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": template.get("spec") or {},
        }
        try:
            return self.emulator.create("pods", pod, meta["namespace"])
        except ApiError as e:  # e.g. an unknown priority class: the real controller records it and retries
            self.emulator.create("events", {
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"kind": "Job", "apiVersion": "batch/v1", "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"]},
                "reason": "FailedCreate", "type": "Warning", "message": f"Error creating: {e.message}",
                "source": {"component": "job-controller"}, "count": 1,
            }, meta["namespace"])
            return None


class Kubelet:
    """Moves bound pods through their life as the kubelet on their node would report it."""

    def __init__(self, emulator: "KubeEmulator"):
        self.emulator = emulator

    def _pod(self, namespace: str, name: str) -> Obj:
        pod = self.emulator.get("pods", name, namespace)
        if pod is None:
            raise KeyError(f"no pod {namespace}/{name}")
        return pod

    def start(self, namespace: str, name: str) -> Obj:
        """Pending → Running (Ready); the pod must be bound to a node."""
        pod = self._pod(namespace, name)
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            raise ValueError(f"pod {namespace}/{name} is not bound to a node; a kubelet cannot run it")
        now = self.emulator.store.now()

        def run(p: Obj) -> None:
            status = p.setdefault("status", {})
            status.update(phase="Running", startTime=status.get("startTime", now), hostIP="10.0.0.1",
                          podIP=status.get("podIP", "10.244.0.10"))
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            for kind in ("Initialized", "ContainersReady", "Ready"):
                conditions[kind] = {"type": kind, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
            status["conditions"] = list(conditions.values())
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True, "restartCount": 0,
                 "started": True, "state": {"running": {"startedAt": now}}}
                for c in (p.get("spec") or {}).get("containers") or []
            ]

        return self.emulator.mutate("pods", name, run, namespace)

    def finish(self, namespace: str, name: str, exit_code: int = 0, reason: str | None = None) -> Obj:
        """Running → Succeeded (exit code 0) or Failed."""
        now = self.emulator.store.now()
        phase = "Succeeded" if exit_code == 0 else "Failed"
        reason = reason or ("Completed" if exit_code == 0 else "Error")

        def end(p: Obj) -> None:
            status = p.setdefault("status", {})
            status["phase"] = phase
            status["conditions"] = [
                {**c, "status": "False", "lastTransitionTime": now} if c.get("type") in ("Ready", "ContainersReady")
                else c for c in status.get("conditions") or []
            ]
            status["containerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False, "restartCount": 0,
                 "started": False,
                 "state": {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": now}}}
                for c in (p.get("spec") or {}).get("containers") or []
            ]

        return self.emulator.mutate("pods", name, end, namespace)

    def sync(self) -> list[str]:
        """Start every bound Pending pod whose node exists and finish the deletion of terminating pods;
        returns `namespace/name` of the pods it changed."""
        changed = []
        nodes = {n["metadata"]["name"] for n in self.emulator.objects("nodes")}
        for pod in self.emulator.objects("pods"):
            meta, spec = pod["metadata"], pod.get("spec") or {}
            ref = f"{meta['namespace']}/{meta['name']}"
            if meta.get("deletionTimestamp"):
                self.emulator.delete("pods", meta["name"], meta["namespace"], gracePeriodSeconds=0)
                changed.append(ref)
            elif spec.get("nodeName") in nodes and (pod.get("status") or {}).get("phase") == "Pending":
                self.start(meta["namespace"], meta["name"])
                changed.append(ref)
        return changed

    def finish_terminating(self) -> list[str]:
        """Remove the pods marked for graceful deletion, as their kubelets confirm the containers stopped."""
        gone = []
        for pod in self.emulator.objects("pods"):
            meta = pod["metadata"]
            if meta.get("deletionTimestamp"):
                self.emulator.delete("pods", meta["name"], meta["namespace"], gracePeriodSeconds=0)
                gone.append(f"{meta['namespace']}/{meta['name']}")
        return gone
