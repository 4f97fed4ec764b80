"""The chart's ValidatingAdmissionPolicies, evaluated with a CEL interpreter (cel-python) on the
requests an API server would hand them: a tenant's edits of a running pod's runai-lite keys and GPU
request are refused, the controller's are not, and a runai-lite priority class must match the
job-type label. (The emulator does not run admission; these are the expressions the chart ships.)"""

from __future__ import annotations

import copy

import celpy
import pytest
from celpy import celtypes

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube import render_manifests
from runai_lite.backends.kube.admission import controller_username

TENANT = "system:serviceaccount:runai-team-b:alice"
CONTROLLER = controller_username("runai-lite")
POLICIES = {m["metadata"]["name"]: m for m in render_manifests() if m["kind"] == "ValidatingAdmissionPolicy"}
ENV = celpy.Environment()


def _evaluate(expression: str, activation: dict):
    return ENV.program(ENV.compile(expression)).evaluate(activation)


def refusals(policy: str, operation: str, obj: dict, old: dict | None = None, user: str = TENANT,
             groups: tuple[str, ...] = ("system:serviceaccounts", "system:authenticated")) -> list[str]:
    """The messages of the validations that fail, as the API server evaluates a policy: variables
    in order, then every validation."""
    spec = POLICIES[policy]["spec"]
    base = {"object": celpy.json_to_cel(obj), "oldObject": celpy.json_to_cel(old),
            "request": celpy.json_to_cel({"operation": operation,
                                          "userInfo": {"username": user, "groups": list(groups)}})}
    variables: dict = {}
    for variable in spec["variables"]:
        variables[celtypes.StringType(variable["name"])] = _evaluate(
            variable["expression"], {**base, "variables": celtypes.MapType(variables)})
    activation = {**base, "variables": celtypes.MapType(variables)}
    return [v["message"] for v in spec["validations"] if not _evaluate(v["expression"], activation)]


def pod(annotations: dict | None = None, labels: dict | None = None, priority: str | None = None) -> dict:
    spec: dict = {"schedulerName": k.SCHEDULER_NAME, "containers": [{"name": "main", "image": "busybox"}]}
    if priority:
        spec["priorityClassName"] = priority
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "runai-team-b", "annotations": annotations or {},
                         "labels": labels or {}}, "spec": spec}


RUNNING = pod({k.GPU_FRACTION: "0.5", k.ALLOCATION: '{"kind":"fraction"}', "note": "mine"},
              {k.JOB_NAME_LABEL: "a", k.PRIORITY_LABEL: "train", k.GPU_GROUP_LABEL: "g1"})


def edited(change) -> dict:
    body = copy.deepcopy(RUNNING)
    change(body["metadata"])
    return body


@pytest.mark.parametrize("change", [
    lambda m: m["annotations"].update({k.GPU_FRACTION: "0.001"}),
    lambda m: m["annotations"].pop(k.ALLOCATION),
    lambda m: m["annotations"].update({k.ALLOCATION: '{"kind":"fraction","share_milli":1}'}),
    lambda m: m["annotations"].update({k.GPU_MEMORY: "100"}),
    lambda m: m["annotations"].update({"nvidia.com/mig-1g.5gb": "1"}),
    lambda m: m["labels"].update({k.PRIORITY_LABEL: "build"}),
    lambda m: m["labels"].update({k.QUEUE_LABEL: "team-c"}),
    lambda m: m["labels"].pop(k.GPU_GROUP_LABEL),
    lambda m: m["labels"].update({"runai-lite/anything": "x"}),
    lambda m: m["annotations"].update({k.ATTEMPT: "7"}),  # the number its logs and describe go by
])
def test_a_tenant_cannot_change_what_the_controller_relies_on(change):
    assert refusals("runai-lite-pod-state", "UPDATE", edited(change), RUNNING)
    assert refusals("runai-lite-pod-state", "UPDATE", edited(change), RUNNING, user=CONTROLLER) == []
    assert refusals("runai-lite-pod-state", "UPDATE", edited(change), RUNNING, user="kubernetes-admin",
                    groups=("system:masters", "system:authenticated")) == []


def test_a_tenant_may_change_everything_else_of_her_pod():
    changed = edited(lambda m: (m["annotations"].update({"note": "edited"}), m["labels"].update({"team": "x"})))
    assert refusals("runai-lite-pod-state", "UPDATE", changed, RUNNING) == []


def test_a_tenant_creates_pods_with_a_gpu_request_but_not_with_the_controllers_annotations():
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.GPU_FRACTION: "0.5"}, {k.JOB_NAME_LABEL: "a"})) == []
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.ALLOCATION: "{}", k.GPU_FRACTION: "0.5"}))
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.STATUS: "Running"}))
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.ATTEMPT: "3"}))
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.ATTEMPTS_STARTED: "3"}))
    assert refusals("runai-lite-pod-state", "CREATE", pod({k.ALLOCATION: "{}"}), user=CONTROLLER) == []


@pytest.mark.parametrize("labels, priority, refused", [
    ({}, None, False),
    ({}, "runai-lite-train", False),
    ({}, "runai-lite-build", True),  # a hand-written training pod claiming the interactive class
    ({k.PRIORITY_LABEL: "train"}, "runai-lite-build", True),
    ({k.PRIORITY_LABEL: "build"}, "runai-lite-build", False),
    ({k.PRIORITY_LABEL: "interactive-preemptible"}, "runai-lite-interactive-preemptible", False),
    ({k.PRIORITY_LABEL: "nonsense"}, "runai-lite-build", True),
    ({k.PRIORITY_LABEL: "build"}, "build", False),  # another product's class of that name: not ours to judge
    ({}, "system-cluster-critical", False),  # not a runai-lite class: not ours to judge
])
def test_a_runai_priority_class_must_match_the_job_type_label(labels, priority, refused):
    assert bool(refusals("runai-lite-pod-priority", "CREATE", pod(labels=labels, priority=priority))) is refused
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "namespace": "runai-team-b"},
           "spec": {"template": {"metadata": {"labels": labels}, "spec": pod(priority=priority)["spec"]}}}
    assert bool(refusals("runai-lite-job-priority", "CREATE", job)) is refused


def test_the_controller_may_create_reservation_pods_with_the_build_class():
    assert refusals("runai-lite-pod-priority", "CREATE", pod(priority="runai-lite-build"), user=CONTROLLER) == []


def test_every_policy_is_bound_to_deny():
    bindings = {m["spec"]["policyName"]: m for m in render_manifests()
                if m["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert set(bindings) == set(POLICIES)
    assert all(b["spec"]["validationActions"] == ["Deny"] for b in bindings.values())
    assert all(p["spec"]["failurePolicy"] == "Fail" for p in POLICIES.values())
