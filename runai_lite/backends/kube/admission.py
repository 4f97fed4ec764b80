"""The ValidatingAdmissionPolicies the install adds: what the API server refuses before the
controller ever sees it (admissionregistration.k8s.io/v1, CEL; Kubernetes 1.30 or later).

- `runai-lite-pod-state`: after a pod is created, its `runai-lite/*` annotations and labels, its
  GPU request (`gpu-fraction`, `gpu-memory`, `gpu-fraction-num-devices`, `nvidia.com/mig-*`), its
  status annotation, GPU-group label and job-type and queue labels may be changed by the
  controller's ServiceAccount (and cluster administrators, `system:masters`) only; and what only
  the controller writes (allocation mirror, bound-at, pending reason, status) no one else may set
  when creating a pod.
- `runai-lite-pod-priority` and `runai-lite-job-priority`: a pod (or a batch Job's pod template)
  that names one of runai-lite's priority classes must be labelled with the job type of that class
  (`priorityClassName: build` needs the label `priorityClassName: build`; no label means train).

The controller checks the same rules itself (an `InvalidRequest` event), so a cluster without
the policies (older than 1.30, or installed without them) is refused at scheduling instead of at
admission; what the policies add is that the objects never change under the controller. Pure
module: manifests only.
"""

from __future__ import annotations

from typing import Any

from ...devices import CDI_ANNOTATION
from . import conventions as k
from .manifests import FRACTION_DEVICES

API_VERSION = "admissionregistration.k8s.io/v1"
ADMINISTRATORS = "system:masters"

# Set when the pod is created (by `runai submit`'s template or a YAML), never changed after.
REQUEST_ANNOTATIONS = (k.GPU_FRACTION, k.GPU_MEMORY, FRACTION_DEVICES)
GUARDED_ANNOTATION_PREFIXES = ("runai-lite/", k.RUNAI_MIG_PREFIX)
GUARDED_LABELS = (k.GPU_GROUP_LABEL, k.PRIORITY_LABEL, k.QUEUE_LABEL)
GUARDED_LABEL_PREFIXES = ("runai-lite/",)
# Written by the controller only, at any time.
CONTROLLER_ANNOTATIONS = (k.ALLOCATION, k.BOUND_AT, k.ATTEMPT, k.ATTEMPTS_STARTED, k.PENDING_REASON, k.STATUS,
                          CDI_ANNOTATION)
# What a node agent may change on its own node, and no one else on any.
AGENT_LABELS = (k.MIG_CONFIG_STATE_LABEL,)


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _guarded(key: str, prefixes: tuple[str, ...], names: tuple[str, ...]) -> str:
    """CEL: whether `key` is one the rule guards."""
    starts = " || ".join(f"{key}.startsWith('{p}')" for p in prefixes)
    return f"({starts} || {key} in {_cel_list(names)})"


def _unchanged(kind: str, prefixes: tuple[str, ...], names: tuple[str, ...]) -> str:
    """CEL: every guarded key of `kind` (annotations or labels) has the value it had, and none was removed."""
    new, old = f"variables.new_{kind}", f"variables.old_{kind}"
    return (f"{new}.all(key, !{_guarded('key', prefixes, names)} || (key in {old} && {old}[key] == {new}[key])) && "
            f"{old}.all(key, !{_guarded('key', prefixes, names)} || key in {new})")


def _map_of(obj: str, field: str) -> str:
    """CEL: the object's annotations or labels, {} when it has none; `oldObject` is null on CREATE,
    so it is only looked at on UPDATE."""
    guard = "request.operation == 'UPDATE' && " if obj == "oldObject" else ""
    return f"{guard}has({obj}.metadata.{field}) ? {obj}.metadata.{field} : {{}}"


def controller_username(namespace: str, account: str = "runai-lite-controller") -> str:
    return f"system:serviceaccount:{namespace}:{account}"


def _policy(name: str, rules: list[dict[str, Any]], variables: list[tuple[str, str]],
            validations: list[tuple[str, str]], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": rules},
            "variables": [{"name": n, "expression": e} for n, e in variables],
            "validations": [{"expression": e, "message": m} for e, m in validations],
        },
    }


def _binding(policy: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy["metadata"]["name"], "labels": policy["metadata"]["labels"]},
        "spec": {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]},
    }


def _priority_rule(spec: str, meta: str, classes: k.PriorityClassNames) -> str:
    labels = f"{meta}.labels"
    declared = (f"(has({meta}) && has({labels}) && '{k.PRIORITY_LABEL}' in {labels} "
                f"? {labels}['{k.PRIORITY_LABEL}'] : 'train')")
    by_type = "{" + ", ".join(f"'{t.priority_class}': '{classes.of(t)}'" for t in k.PRIORITY_CLASSES.values()) + "}"
    return (f"variables.trusted || !has({spec}.priorityClassName) || "
            f"!({spec}.priorityClassName in {_cel_list(classes.names)}) || "
            f"({declared} in {by_type} && {spec}.priorityClassName == {by_type}[{declared}])")


def _priority_message(classes: k.PriorityClassNames) -> str:
    return (f"runai-lite's priority classes follow the job type: label the pod (or the Job's template) "
            f"{k.PRIORITY_LABEL}=<job type> for the class it names ({k.PRIORITY_LABEL}=build for "
            f"{classes.of(k.PRIORITY_CLASSES['build'])}), or use priorityClassName: "
            f"{classes.of(k.PRIORITY_CLASSES['train'])}")


def _only_changed(kind: str, allowed: tuple[str, ...]) -> str:
    """CEL: no key of `kind` (annotations or labels) outside `allowed` was added, changed or removed."""
    new, old = f"variables.new_{kind}", f"variables.old_{kind}"
    return (f"{new}.all(key, key in {_cel_list(allowed)} || (key in {old} && {old}[key] == {new}[key])) && "
            f"{old}.all(key, key in {_cel_list(allowed)} || key in {new})")


def _node_claim() -> str:
    extra = "request.userInfo.extra"
    return f"has({extra}) && '{k.NODE_NAME_CLAIM}' in {extra} ? {extra}['{k.NODE_NAME_CLAIM}'][0] : ''"


def agent_policies(namespace: str, labels: dict[str, str], agent_account: str) -> list[dict[str, Any]]:
    """NodeRestriction for the node agents: each may change only its own node (the node its pod's
    token names), and there only its reports (`runai-lite/gpus`, `runai-lite/mig-actual`,
    `runai-lite/reported-by` set to that node) and the MIG manager's state label; it may delete
    only pods on its own node (the device plugin it restarts). No one but an agent (and cluster
    administrators) may write a node's reports."""
    is_agent = ("is_agent", f"request.userInfo.username == '{controller_username(namespace, agent_account)}'")
    claim = ("node_claim", _node_claim())
    admin = ("admin", f"'{ADMINISTRATORS}' in request.userInfo.groups")
    reports = _cel_list(k.AGENT_REPORTS)
    node_reports = _policy(
        "runai-lite-node-reports",
        [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["nodes"], "operations": ["UPDATE"]}],
        [is_agent, claim, admin,
         ("new_annotations", _map_of("object", "annotations")), ("old_annotations", _map_of("oldObject", "annotations")),
         ("new_labels", _map_of("object", "labels")), ("old_labels", _map_of("oldObject", "labels"))],
        [("!variables.is_agent || variables.node_claim == object.metadata.name",
          "a node agent may change only the node its pod runs on (its token's node-name)"),
         (f"!variables.is_agent || ({_only_changed('annotations', k.AGENT_REPORTS)} && "
          f"{_only_changed('labels', AGENT_LABELS)} && "
          "(has(object.spec) ? object.spec : {}) == (has(oldObject.spec) ? oldObject.spec : {}))",
          "a node agent may change only its node's runai-lite reports and MIG state label"),
         (f"!variables.is_agent || !('{k.REPORTED_BY}' in variables.new_annotations) || "
          f"variables.new_annotations['{k.REPORTED_BY}'] == variables.node_claim",
          f"{k.REPORTED_BY} must name the node of the agent that writes it"),
         (f"variables.is_agent || variables.admin || {reports}.all(key, (key in variables.new_annotations) == "
          "(key in variables.old_annotations) && (!(key in variables.new_annotations) || "
          "variables.new_annotations[key] == variables.old_annotations[key]))",
          "a node's runai-lite GPU reports are written by that node's agent only")],
        labels)
    pod_restarts = _policy(
        "runai-lite-agent-pod-deletions",
        [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["DELETE"]}],
        [is_agent, claim],
        [("!variables.is_agent || (has(oldObject.spec.nodeName) && oldObject.spec.nodeName == variables.node_claim)",
          "a node agent may delete only pods on its own node (the GPU Operator's, after a MIG change)")],
        labels)
    return [node_reports, pod_restarts]


def admission_policies(namespace: str, labels: dict[str, str], controller_account: str = "runai-lite-controller",
                       classes: k.PriorityClassNames | None = None, agent_account: str = "runai-lite-agent"
                       ) -> list[dict[str, Any]]:
    """The policies and their bindings, for a controller running in `namespace` as `controller_account`
    and agents as `agent_account`."""
    # The controller's ServiceAccount, and cluster administrators (who could remove the policies
    # anyway, and may run the controller out of cluster with their own kubeconfig).
    trusted = ("trusted", f"request.userInfo.username == '{controller_username(namespace, controller_account)}' || "
                          f"'{ADMINISTRATORS}' in request.userInfo.groups")
    classes = classes or k.PriorityClassNames()
    pods = [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE", "UPDATE"]}]
    state = _policy(
        "runai-lite-pod-state", pods,
        [trusted,
         ("new_annotations", _map_of("object", "annotations")),
         ("old_annotations", _map_of("oldObject", "annotations")),
         ("new_labels", _map_of("object", "labels")), ("old_labels", _map_of("oldObject", "labels"))],
        [(f"variables.trusted || request.operation != 'UPDATE' || "
          f"{_unchanged('annotations', GUARDED_ANNOTATION_PREFIXES, (*REQUEST_ANNOTATIONS, k.STATUS, CDI_ANNOTATION))}",
          "a pod's runai-lite annotations and GPU request are set when it is created; only the runai-lite "
          "controller may change them"),
         (f"variables.trusted || request.operation != 'UPDATE' || "
          f"{_unchanged('labels', GUARDED_LABEL_PREFIXES, GUARDED_LABELS)}",
          "a pod's runai-lite labels (job, job type, queue, GPU group) are set when it is created; only the "
          "runai-lite controller may change them"),
         (f"variables.trusted || request.operation != 'CREATE' || "
          f"!variables.new_annotations.exists(key, key in {_cel_list(CONTROLLER_ANNOTATIONS)})",
          "allocation and status annotations are written by the runai-lite controller only")],
        labels)
    pod_priority = _policy(
        "runai-lite-pod-priority",
        [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}],
        [trusted], [(_priority_rule("object.spec", "object.metadata", classes), _priority_message(classes))], labels)
    job_priority = _policy(
        "runai-lite-job-priority",
        [{"apiGroups": ["batch"], "apiVersions": ["v1"], "resources": ["jobs"], "operations": ["CREATE", "UPDATE"]}],
        [trusted],
        [(_priority_rule("object.spec.template.spec", "object.spec.template.metadata", classes),
          _priority_message(classes))],
        labels)
    policies = [state, pod_priority, job_priority, *agent_policies(namespace, labels, agent_account)]
    return [*policies, *(_binding(p) for p in policies)]
