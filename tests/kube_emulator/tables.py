"""Server-side `Table` output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`), which `kubectl get`
asks for: the columns the API server's printers give pods, nodes, Jobs and namespaces (others get
`Name` and `Created At`), the `Age` cells as kubectl's HumanDuration writes them, and each row's object
as `PartialObjectMetadata` (or whole with `includeObject=Object`)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

from .resources import ResourceType

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj, datetime], Any]]  # name, type/format, priority, cell


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    s = int(seconds)
    if s < 0:
        return "<invalid>"
    if s < 120:
        return f"{s}s"
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 192:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    return f"{days // 365}y{days % 365}d" if days < 365 * 8 else f"{days // 365}y"


def _since(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "<unknown>"
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return human_duration((now - moment).total_seconds())


def _age(obj: Obj, now: datetime) -> str:
    return _since(obj["metadata"].get("creationTimestamp"), now)


def _pod_status(pod: Obj, _: datetime) -> str:
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Unknown"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting, terminated = state.get("waiting") or {}, state.get("terminated") or {}
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif terminated.get("reason") and status.get("phase") not in ("Running",):
            reason = terminated["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_ready(pod: Obj, _: datetime) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for c in statuses if c.get('ready'))}/{total}"


def _restarts(pod: Obj, _: datetime) -> str:
    return str(sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or []))


def _node_status(node: Obj, _: datetime) -> str:
    ready = [c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
    state = "Ready" if ready and ready[0].get("status") == "True" else "NotReady" if ready else "Unknown"
    return state + (",SchedulingDisabled" if (node.get("spec") or {}).get("unschedulable") else "")


def _roles(node: Obj, _: datetime) -> str:
    prefix = "node-role.kubernetes.io/"
    roles = sorted(k[len(prefix):] for k in (node["metadata"].get("labels") or {}) if k.startswith(prefix))
    return ",".join(roles) or "<none>"


def _job_status(job: Obj, _: datetime) -> str:
    conditions = {c.get("type"): c.get("status") for c in (job.get("status") or {}).get("conditions") or []}
    for kind in ("Complete", "Failed", "Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if conditions.get(kind) == "True":
            return {"FailureTarget": "FailureTarget", "SuccessCriteriaMet": "SuccessCriteriaMet"}.get(kind, kind)
    return "Running"


def _completions(job: Obj, _: datetime) -> str:
    return f"{(job.get('status') or {}).get('succeeded', 0)}/{(job.get('spec') or {}).get('completions', 1)}"


def _duration(job: Obj, now: datetime) -> str:
    status = job.get("status") or {}
    if not status.get("startTime"):
        return ""
    start = datetime.strptime(status["startTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    end = (datetime.strptime(status["completionTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
           if status.get("completionTime") else now)
    return human_duration((end - start).total_seconds())


def _field(*path: str, default: str = "<none>") -> Callable[[Obj, datetime], Any]:
    def cell(obj: Obj, _: datetime) -> Any:
        value: Any = obj
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        return default if value in (None, "") else value
    return cell


def _address(kind: str) -> Callable[[Obj, datetime], str]:
    def cell(node: Obj, _: datetime) -> str:
        found = [a["address"] for a in (node.get("status") or {}).get("addresses") or [] if a.get("type") == kind]
        return found[0] if found else "<none>"
    return cell


_NAME: Column = ("Name", "name", 0, lambda o, _: o["metadata"]["name"])
_AGE: Column = ("Age", "string", 0, _age)
_COLUMNS: dict[str, list[Column]] = {
    "pods": [_NAME, ("Ready", "string", 0, _pod_ready), ("Status", "string", 0, _pod_status),
             ("Restarts", "string", 0, _restarts), _AGE, ("IP", "string", 1, _field("status", "podIP")),
             ("Node", "string", 1, _field("spec", "nodeName")),
             ("Nominated Node", "string", 1, _field("status", "nominatedNodeName")),
             ("Readiness Gates", "string", 1, lambda o, _: "<none>")],
    "nodes": [_NAME, ("Status", "string", 0, _node_status), ("Roles", "string", 0, _roles), _AGE,
              ("Version", "string", 0, _field("status", "nodeInfo", "kubeletVersion")),
              ("Internal-IP", "string", 1, _address("InternalIP")),
              ("External-IP", "string", 1, _address("ExternalIP")),
              ("OS-Image", "string", 1, _field("status", "nodeInfo", "osImage")),
              ("Kernel-Version", "string", 1, _field("status", "nodeInfo", "kernelVersion")),
              ("Container-Runtime", "string", 1, _field("status", "nodeInfo", "containerRuntimeVersion"))],
    "jobs.batch": [_NAME, ("Status", "string", 0, _job_status), ("Completions", "string", 0, _completions),
                   ("Duration", "string", 0, _duration), _AGE],
    "namespaces": [_NAME, ("Status", "string", 0, _field("status", "phase", default="Active")), _AGE],
}
_DEFAULT: list[Column] = [_NAME, ("Created At", "date", 0, _field("metadata", "creationTimestamp"))]


def table(r: ResourceType, answer: Obj, now: datetime, include_object: str = "Metadata") -> Obj:
    """The Table for a list answer or a single object."""
    items = answer["items"] if "items" in answer else [answer]
    columns = _COLUMNS.get(r.key, _DEFAULT)
    definitions = [{"name": name, "type": "string" if kind in ("name", "date") else kind,
                    "format": kind if kind in ("name", "date") else "", "description": "", "priority": priority}
                   for name, kind, priority, _ in columns]

    def row_object(obj: Obj) -> Obj | None:
        if include_object == "None":
            return None
        if include_object == "Object":
            return {"kind": r.kind, "apiVersion": r.api_version, **obj}
        return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}

    rows = [{"cells": [cell(obj, now) for _, _, _, cell in columns], "object": row_object(obj)} for obj in items]
    metadata = {k: v for k, v in (answer.get("metadata") or {}).items() if k in ("resourceVersion", "continue")} \
        if "items" in answer else {"resourceVersion": answer["metadata"].get("resourceVersion", "")}
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions,
            "rows": rows}
