"""The batch/v1 Job controller as an explicit stand-in: `JobController.sync()` is one pass of Kubernetes
1.31's controller over every Job.

- Pods are made from the template (`generateName: <job>-`, the template's labels and annotations, a
  controller ownerReference) with the `batch.kubernetes.io/job-tracking` finalizer, through the same
  create path as the API (admission applies; a failure is a `FailedCreate` Warning Event).
- A pod is counted once, when it has finished (Succeeded, or failed: phase Failed; without a
  podFailurePolicy and with podReplacementPolicy `TerminatingOrFailed`, also a deleted pod that did not
  succeed), and its finalizer is then removed, so a deleted pod is counted before it goes.
- `podFailurePolicy` rules are applied to failed pods in order, first match wins: `onExitCodes`
  (`In`/`NotIn`, optionally per container) and `onPodConditions` (e.g. `DisruptionTarget`, which
  evictions, preemptions, the taint manager and the pod GC set); actions `Ignore` (not counted against
  `backoffLimit`; the pod is replaced), `FailJob` (Failed, reason `PodFailurePolicy`), `Count`.
- `podReplacementPolicy`: `Failed` (the default when a podFailurePolicy is set) replaces a terminating
  pod only once it is Failed; `TerminatingOrFailed` (the default otherwise) replaces it at once.
  `status.terminating` counts them.
- `backoffLimit`: more failures than it allows fail the Job (`BackoffLimitExceeded`); a finished Job's
  active pods are deleted.
- `suspend: true` deletes the active pods (their ends are not counted as failures) and sets the
  `Suspended` condition; resuming clears it (`JobResumed`), sets a new `startTime` and makes pods again.
  Each records a Normal Event on the Job (`Suspended` "Job suspended", `Resumed` "Job resumed").
- `completions` successful pods (exit 0) complete the Job (`Complete`, `completionTime`).

Not emulated: Indexed completion, `successPolicy`, `activeDeadlineSeconds`, the exponential backoff
between pod re-creations, `ttlSecondsAfterFinished`, the 1.31 interim `FailureTarget` /
`SuccessCriteriaMet` conditions.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from .errors import ApiError
from .policies import UserInfo, acting_as
from .store import TERMINAL_POD_PHASES, Obj

if TYPE_CHECKING:
    from .emulator import KubeEmulator

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
USER = UserInfo("system:serviceaccount:kube-system:job-controller",
                ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"))


def _owned_by(obj: Obj, uid: str) -> bool:
    return any(ref.get("uid") == uid and ref.get("controller") for ref in obj["metadata"].get("ownerReferences") or [])


def _has_condition(obj: Obj, kind: str, status: str = "True") -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == status
               for c in (obj.get("status") or {}).get("conditions") or [])


def _phase(pod: Obj) -> str | None:
    return (pod.get("status") or {}).get("phase")


def replacement_policy(job: Obj) -> str:
    spec = job.get("spec") or {}
    return spec.get("podReplacementPolicy") or ("Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")


def _exit_codes(pod: Obj, container: str | None) -> list[tuple[str, int]]:
    out = []
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated is not None and container in (None, status.get("name")):
            out.append((status["name"], int(terminated.get("exitCode", 0))))
    return out


def _rule_matches(rule: Obj, pod: Obj) -> bool:
    codes = rule.get("onExitCodes")
    if codes is not None:
        values, operator = set(codes.get("values") or []), codes.get("operator")
        found = [code for _, code in _exit_codes(pod, codes.get("containerName"))]
        if operator == "In":
            return any(code in values for code in found)
        return any(code != 0 and code not in values for code in found)  # NotIn ignores exit code 0
    return any(_has_condition(pod, c.get("type", ""), c.get("status", "True")) for c in rule.get("onPodConditions") or [])


def failure_action(job: Obj, pod: Obj) -> tuple[str, int | None]:
    """What the podFailurePolicy does with a failed pod: (`Ignore`|`FailJob`|`Count`, the rule's index)."""
    for n, rule in enumerate(((job.get("spec") or {}).get("podFailurePolicy") or {}).get("rules") or []):
        if _rule_matches(rule, pod):
            return rule.get("action", "Count"), n
    return "Count", None


def is_failed(job: Obj, pod: Obj) -> bool:
    if _phase(pod) == "Failed":
        return True
    if (job.get("spec") or {}).get("podFailurePolicy") or replacement_policy(job) == "Failed":
        return False
    # a deleted pod that did not succeed is a failure (it may never reach a phase: orphans)
    return bool(pod["metadata"].get("deletionTimestamp")) and _phase(pod) != "Succeeded"


class JobController:
    def __init__(self, emulator: "KubeEmulator"):
        self.emulator = emulator

    def sync(self, namespace: str | None = None) -> list[str]:
        """One pass over every Job (in one namespace or all); returns the names of the pods it created."""
        created: list[str] = []
        with acting_as(USER):
            for job in self.emulator.objects("jobs.batch", namespace):
                created += self._sync_job(job)
        return created

    def _untrack(self, pod: Obj) -> None:
        finalizers = [f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
        self.emulator.store.patch(self.emulator.resource("pods"), pod["metadata"]["namespace"],
                                  pod["metadata"]["name"], "application/merge-patch+json",
                                  {"metadata": {"finalizers": finalizers or None}})

    def _delete(self, pod: Obj) -> None:
        if self.emulator.get("pods", pod["metadata"]["name"], pod["metadata"]["namespace"]) is not None:
            self.emulator.delete("pods", pod["metadata"]["name"], pod["metadata"]["namespace"])

    def _sync_job(self, job: Obj) -> list[str]:
        spec, status, meta = job.get("spec") or {}, dict(job.get("status") or {}), job["metadata"]
        pods = [p for p in self.emulator.objects("pods", meta["namespace"]) if _owned_by(p, meta["uid"])]
        finished = _has_condition(job, "Complete") or _has_condition(job, "Failed")
        suspended = bool(spec.get("suspend"))
        now = self.emulator.store.now()
        conditions = list(status.get("conditions") or [])
        succeeded, failed = status.get("succeeded", 0), status.get("failed", 0)
        fail_reason: tuple[str, str] | None = None
        for pod in pods:  # count every pod that finished, once, then let it go
            tracked = TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])
            if not tracked:
                continue
            if finished:
                self._untrack(pod)
            elif _phase(pod) == "Succeeded":
                succeeded += 1
                self._untrack(pod)
            elif is_failed(job, pod):
                action, index = failure_action(job, pod)
                if suspended and action == "Count":
                    action = "Ignore"  # pods the suspension stopped are not failures
                if action == "FailJob" and fail_reason is None:
                    container, code = (_exit_codes(pod, None) or [("", 0)])[0]
                    fail_reason = ("PodFailurePolicy", f"Container {container} for pod {meta['namespace']}/"
                                   f"{pod['metadata']['name']} failed with exit code {code} matching FailJob rule at "
                                   f"index {index}")
                if action != "Ignore":
                    failed += 1
                self._untrack(pod)
        pods = [p for p in self.emulator.objects("pods", meta["namespace"]) if _owned_by(p, meta["uid"])]
        active = [p for p in pods if _phase(p) not in TERMINAL_POD_PHASES and not p["metadata"].get("deletionTimestamp")]
        terminating = [p for p in pods
                       if _phase(p) not in TERMINAL_POD_PHASES and p["metadata"].get("deletionTimestamp")]
        completions = spec.get("completions", 1)
        if not finished and fail_reason is None and failed > spec.get("backoffLimit", 6):
            fail_reason = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
        created: list[str] = []
        if finished:
            pass
        elif fail_reason is not None or succeeded >= completions:
            for pod in active:
                self._delete(pod)
            active = []
            if fail_reason is not None:
                conditions.append({"type": "Failed", "status": "True", "reason": fail_reason[0],
                                   "message": fail_reason[1], "lastProbeTime": now, "lastTransitionTime": now})
            else:
                conditions.append({"type": "Complete", "status": "True", "lastProbeTime": now,
                                   "lastTransitionTime": now})
                status["completionTime"] = now
        elif suspended:
            for pod in active:
                self._delete(pod)
            terminating += active
            active = []
            if not _has_condition(job, "Suspended"):
                conditions = [c for c in conditions if c.get("type") != "Suspended"] + [
                    {"type": "Suspended", "status": "True", "reason": "JobSuspended", "message": "Job suspended",
                     "lastProbeTime": now, "lastTransitionTime": now}]
                status.pop("startTime", None)
                self._event(job, "Suspended", "Job suspended")
        else:
            if _has_condition(job, "Suspended"):
                conditions = [c for c in conditions if c.get("type") != "Suspended"] + [
                    {"type": "Suspended", "status": "False", "reason": "JobResumed", "message": "Job resumed",
                     "lastProbeTime": now, "lastTransitionTime": now}]
                status["startTime"] = now
                self._event(job, "Resumed", "Job resumed")
            status.setdefault("startTime", now)
            busy = len(active) + (len(terminating) if replacement_policy(job) == "Failed" else 0)
            wanted = min(spec.get("parallelism", 1), completions - succeeded) - busy
            for _ in range(max(wanted, 0)):
                pod = self._create_pod(job)
                if pod is not None:
                    created.append(pod["metadata"]["name"])
                    active.append(pod)
        ready = sum(1 for p in active if _has_condition(p, "Ready"))
        new_status = {**status, "active": len(active), "ready": ready, "succeeded": succeeded, "failed": failed,
                      "terminating": len(terminating), "conditions": conditions}
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
                "finalizers": [TRACKING_FINALIZER],
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": template.get("spec") or {},
        }
        try:
            return self.emulator.create("pods", pod, meta["namespace"])
        except ApiError as e:  # e.g. an unknown priority class: the real controller records it and retries
            self._event(job, "FailedCreate", f"Error creating: {e.message}", "Warning")
            return None

    def _event(self, job: Obj, reason: str, message: str, kind: str = "Normal") -> None:
        meta = job["metadata"]
        self.emulator.create("events", {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"kind": "Job", "apiVersion": "batch/v1", "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": reason, "type": kind, "message": message,
            "source": {"component": "job-controller"}, "count": 1,
        }, meta["namespace"])
