"""Allocation objects: where the controller records what each pod holds (`allocations.runai-lite.io`).

A pod's claim on a GPU, a share of one or a MIG partition is an `Allocation` custom resource
(KAI's binder keeps BindRequest objects the same way). Only the controller's ServiceAccount may
create, change or delete them: users get no RBAC on the kind (the aggregated `view` role may read
it), so what the scheduler builds its snapshot from is not theirs to write. The pod's
`runai-lite/allocation` annotation is a mirror for people and `runai describe`; the controller
never reads it.

Namespaced, in the pod's namespace and named after the pod, because an owner reference may only
point at an owner in the same namespace: the pod owns its Allocation, so the garbage collector
deletes it once the pod is gone (and not before: a terminating pod keeps holding what it holds).
`spec.podUID` ties it to one incarnation of the name; one left by an earlier pod of the same name
counts for nothing and is deleted. Pure module: manifests and parsing, no I/O.
"""

from __future__ import annotations

from typing import Any

from ...model import Allocation
from . import conventions as k
from .meta import Meta
from .rest import group

GROUP = "runai-lite.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "Allocation"
PLURAL = "allocations"
CRD_NAME = f"{PLURAL}.{GROUP}"

_ALLOCATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "node", "gpu_indices"],
    "properties": {
        "kind": {"type": "string", "enum": ["gpu", "fraction", "mig"]},
        "node": {"type": "string"},
        "gpu_indices": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "gpu_uuids": {"type": "array", "items": {"type": "string"}},
        "share_milli": {"type": "integer", "minimum": 1, "maximum": 1000},
        "memory_mib": {"type": "integer"},
        "mig_profile": {"type": "string"},
        "mig_start": {"type": "integer"},
        "mig_size": {"type": "integer"},
        "mig_uuid": {"type": "string"},
    },
}


def path(namespace: str | None = None, name: str | None = None) -> str:
    return group(API_VERSION, PLURAL, namespace, name)


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition, as `runai-adm install` applies it."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/name": "runai-lite",
                                                   "app.kubernetes.io/part-of": "runai-lite"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "allocation", "kind": KIND, "listKind": f"{KIND}List",
                      "shortNames": ["rlalloc"]},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "What a pod holds, recorded by the runai-lite controller (users cannot write it).",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": {
                            "type": "object",
                            "required": ["podName", "podUID", "allocation"],
                            "properties": {
                                "podName": {"type": "string"},
                                "podUID": {"type": "string"},
                                "boundAt": {"type": "string"},
                                "allocation": _ALLOCATION_SCHEMA,
                            },
                        },
                    },
                }},
                "additionalPrinterColumns": [
                    {"name": "Pod", "type": "string", "jsonPath": ".spec.podName"},
                    {"name": "Node", "type": "string", "jsonPath": ".spec.allocation.node"},
                    {"name": "Kind", "type": "string", "jsonPath": ".spec.allocation.kind"},
                    {"name": "Share", "type": "integer", "jsonPath": ".spec.allocation.share_milli"},
                ],
            }],
        },
    }


def allocation_object(pod: dict[str, Any], allocation: Allocation, bound_at: str) -> dict[str, Any]:
    """The Allocation of `pod`, owned by it (deleted with it by the garbage collector)."""
    meta = Meta(pod)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": {"app.kubernetes.io/managed-by": "runai-lite", k.RESERVATION_NODE: allocation.node},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta.name, "uid": meta.uid,
                                 "controller": False, "blockOwnerDeletion": False}],
        },
        "spec": {"podName": meta.name, "podUID": meta.uid, "boundAt": bound_at,
                 "allocation": allocation_body(allocation)},
    }


def allocation_body(allocation: Allocation) -> dict[str, Any]:
    return allocation.model_dump(mode="json", exclude_defaults=True)


def held_by(obj: dict[str, Any]) -> tuple[str, str, str] | None:
    """(namespace, pod name, pod UID) an Allocation object speaks for; None when unreadable."""
    spec = obj.get("spec") or {}
    meta = Meta(obj)
    if not (meta.namespace and spec.get("podName") and spec.get("podUID")):
        return None
    return meta.namespace, str(spec["podName"]), str(spec["podUID"])


def parse(obj: dict[str, Any]) -> Allocation | None:
    try:
        return Allocation.model_validate((obj.get("spec") or {}).get("allocation") or {})
    except ValueError:
        return None


def bound_at(obj: dict[str, Any]) -> str | None:
    return (obj.get("spec") or {}).get("boundAt")
