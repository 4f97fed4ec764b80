"""What the API server does to an object before storing it: defaulting and the validation that tends to
catch real bugs (names, label syntax, pod and Job shape, immutable fields, priority class resolution).

Pure functions over plain dicts; the store calls them with the objects it already holds.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from . import crds
from .errors import ApiError, invalid
from .resources import ResourceType

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = re.compile(_LABEL)
DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")

# name rules by kind: (pattern, longest, what); other kinds' names are DNS-1123 subdomains
_NAME_RULES = {
    "Namespace": (DNS1123_LABEL, 63, "RFC 1123 label"),
    "Service": (DNS1035_LABEL, 63, "RFC 1035 label"),
}
_SUBDOMAIN_RULE = (DNS1123_SUBDOMAIN, 253, "RFC 1123 subdomain")

# the pod spec fields an update may change (k8s ValidatePodUpdate); everything else is immutable
_MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "schedulingGates", "terminationGracePeriodSeconds")

SYSTEM_PRIORITY_CLASSES = (
    {"metadata": {"name": "system-node-critical"}, "value": 2000001000,
     "description": "Used for system critical pods that must not be moved from their current node."},
    {"metadata": {"name": "system-cluster-critical"}, "value": 2000000000,
     "description": "Used for system critical pods that must run in the cluster, but can be moved to another node."},
)


def validate_name(kind: str, name: str) -> list[str]:
    pattern, limit, what = _NAME_RULES.get(kind, _SUBDOMAIN_RULE)
    if len(name) > limit or not pattern.fullmatch(name):
        return [f'metadata.name: Invalid value: "{name}": a lowercase {what} must consist of lower case '
                f"alphanumeric characters, '-' or '.', and be at most {limit} characters"]
    return []


def _qualified_name_errors(path: str, key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    errors = []
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.fullmatch(prefix)):
        errors.append(f'{path}: Invalid value: "{key}": prefix part must be a lowercase RFC 1123 subdomain')
    if not name or len(name) > 63 or not _QUALIFIED_NAME.fullmatch(name):
        errors.append(f'{path}: Invalid value: "{key}": name part must consist of alphanumeric characters, '
                      "'-', '_' or '.', and must start and end with an alphanumeric character (at most 63)")
    return errors


def validate_metadata(meta: dict[str, Any], path: str = "metadata") -> list[str]:
    errors: list[str] = []
    for key, value in (meta.get("labels") or {}).items():
        errors += _qualified_name_errors(f"{path}.labels", key)
        if not isinstance(value, str) or len(value) > 63 or (value and not _QUALIFIED_NAME.fullmatch(value)):
            errors.append(f'{path}.labels: Invalid value: "{value}": a valid label must be an empty string or '
                          "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                          "alphanumeric character (at most 63)")
    for key, value in (meta.get("annotations") or {}).items():
        errors += _qualified_name_errors(f"{path}.annotations", key)
        if not isinstance(value, str):
            errors.append(f"{path}.annotations: Invalid value: {key}: annotation values must be strings")
    return errors


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    for container in spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("imagePullPolicy", "IfNotPresent")


def validate_pod_spec(spec: dict[str, Any], path: str) -> list[str]:
    containers = spec.get("containers") or []
    if not containers:
        return [f"{path}.containers: Required value"]
    errors = []
    names = [c.get("name") for c in containers + (spec.get("initContainers") or [])]
    for n, c in enumerate(containers):
        if not c.get("name"):
            errors.append(f"{path}.containers[{n}].name: Required value")
        if not c.get("image"):
            errors.append(f"{path}.containers[{n}].image: Required value")
    dupes = sorted({n for n in names if n and names.count(n) > 1})
    errors += [f'{path}.containers: Duplicate value: "{n}"' for n in dupes]
    return errors


def _pod_spec_immutable_part(spec: dict[str, Any]) -> dict[str, Any]:
    """The pod spec minus what an update may change (container images included)."""
    out = {k: v for k, v in spec.items() if k not in _MUTABLE_POD_SPEC}
    for field in ("containers", "initContainers"):
        if field in out:
            out[field] = [{k: v for k, v in c.items() if k != "image"} for c in out[field]]
    return out


class Admission:
    """Per-kind defaulting and validation; `list_objects(resource)` reads other objects (priority
    classes) from the store."""

    def __init__(self, list_objects: Callable[[str], list[dict[str, Any]]]):
        self.list_objects = list_objects

    def on_create(self, r: ResourceType, obj: dict[str, Any]) -> None:
        """Default and validate a new object in place; raise ApiError 422/403."""
        meta = obj["metadata"]
        errors = validate_name(r.kind, meta["name"]) + validate_metadata(meta)
        if r.kind == "Namespace":
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif r.kind == "Pod" and r.group == "":
            spec = obj.setdefault("spec", {})
            default_pod_spec(spec)
            errors += validate_pod_spec(spec, "spec")
            obj["status"] = {"phase": "Pending"}
            if not errors:
                self._resolve_priority(spec)
        elif r.kind == "Job" and r.group == "batch":
            errors += self._default_job(obj)
        elif r.key == crds.CRD_KEY:
            errors += crds.validate_definition(obj)
            obj["status"] = crds.established_status(obj, meta["creationTimestamp"])
        elif r.kind == "PriorityClass" and not isinstance(obj.get("value"), int):
            errors.append("value: Required value")
        if errors:
            raise invalid(r.kind, meta["name"], errors)

    def _resolve_priority(self, spec: dict[str, Any]) -> None:
        # the Priority admission plugin: the pod's priority comes from its class, or the global default
        classes = {pc["metadata"]["name"]: pc for pc in self.list_objects("priorityclasses.scheduling.k8s.io")}
        name = spec.get("priorityClassName")
        if name:
            pc = classes.get(name)
            if pc is None:
                raise ApiError(403, f"pods is forbidden: no PriorityClass with name {name} was found")
        else:
            pc = next((c for c in classes.values() if c.get("globalDefault")), None)
        if pc is not None:
            spec["priorityClassName"] = pc["metadata"]["name"]
            spec["priority"] = pc["value"]
            spec["preemptionPolicy"] = pc.get("preemptionPolicy", "PreemptLowerPriority")
        else:
            spec.setdefault("priority", 0)
            spec.setdefault("preemptionPolicy", "PreemptLowerPriority")

    @staticmethod
    def _default_job(job: dict[str, Any]) -> list[str]:
        meta, spec = job["metadata"], job.setdefault("spec", {})
        spec.setdefault("completions", 1)
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        spec.setdefault("suspend", False)
        job["status"] = {}
        template = spec.setdefault("template", {})
        tmeta, tspec = template.setdefault("metadata", {}), template.setdefault("spec", {})
        default_pod_spec(tspec)
        if not spec.get("manualSelector"):
            owner_labels = {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": meta["name"],
                "controller-uid": meta["uid"],
                "job-name": meta["name"],
            }
            tmeta.setdefault("labels", {}).update(owner_labels)
            spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
        errors = validate_metadata(tmeta, "spec.template.metadata") + validate_pod_spec(tspec, "spec.template.spec")
        restart = tspec.get("restartPolicy")
        if restart not in ("Never", "OnFailure"):
            errors.append(f'spec.template.spec.restartPolicy: Unsupported value: "{restart}": '
                          'supported values: "OnFailure", "Never"')
        if spec.get("podFailurePolicy") and restart != "Never":
            errors.append("spec.podFailurePolicy: Invalid value: only allowed when spec.template.spec.restartPolicy "
                          "is Never")
        return errors

    def on_update(self, r: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Validate an update of the main resource; raise ApiError 422."""
        meta = new["metadata"]
        errors = validate_metadata(meta)
        if r.kind == "Pod" and r.group == "":
            if _pod_spec_immutable_part(old.get("spec") or {}) != _pod_spec_immutable_part(new.get("spec") or {}):
                errors.append("spec: Forbidden: pod updates may not change fields other than "
                              "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                              "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                              "tolerations),`spec.terminationGracePeriodSeconds`")
        elif r.key == crds.CRD_KEY:
            errors += crds.validate_definition(new)
            if (old["spec"].get("group"), old["spec"].get("names", {}).get("plural"), old["spec"].get("scope")) != (
                    new["spec"].get("group"), new["spec"].get("names", {}).get("plural"), new["spec"].get("scope")):
                errors.append("spec: Invalid value: group, names.plural and scope are immutable")
        elif r.kind == "Job" and r.group == "batch":
            for field in ("selector", "template", "completionMode"):
                old_value, new_value = (old.get("spec") or {}).get(field), (new.get("spec") or {}).get(field)
                suspended = (old.get("spec") or {}).get("suspend") and field == "template"
                if old_value != new_value and not suspended:
                    errors.append(f"spec.{field}: Invalid value: field is immutable")
        if errors:
            raise invalid(r.kind, meta["name"], errors)
