"""CustomResourceDefinitions, as the apiextensions API server serves them.

A stored `apiextensions.k8s.io/v1` CRD makes the emulator serve its group, storage version and plural
(namespaced or cluster-scoped) through the same generic handlers as the built-in kinds: CRUD, lists
with selectors, watch, the patch flavours, resourceVersion conflicts, RBAC, discovery, and the
`status` subresource when the version declares it. Custom objects are checked against the version's
`openAPIV3Schema` as a structural schema: fields the schema does not name are pruned (a `Warning`
header, as `fieldValidation=Warn` answers), unless `x-kubernetes-preserve-unknown-fields` keeps them;
a wrong type, a missing required field or a value outside an enum/pattern/range is 422 Invalid.

Not emulated: conversion between versions (only the storage version is served), the `scale`
subresource, `x-kubernetes-validations` (CEL rules), defaulting from `default:`, printer columns.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonschema

from .errors import invalid
from .resources import ResourceType

Obj = dict[str, Any]
CRD_KEY = "customresourcedefinitions.apiextensions.k8s.io"
_META_FIELDS = ("apiVersion", "kind", "metadata")


def validate_definition(crd: Obj) -> list[str]:
    """The apiextensions validation that matters for serving: names, scope, exactly one storage version."""
    spec, name = crd.get("spec") or {}, crd["metadata"]["name"]
    names = spec.get("names") or {}
    errors = []
    if not spec.get("group"):
        errors.append("spec.group: Required value")
    if not names.get("plural") or not names.get("kind"):
        errors.append("spec.names: Required value: plural and kind are required")
    elif name != f"{names['plural']}.{spec.get('group')}":
        errors.append(f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(f'spec.scope: Unsupported value: "{spec.get("scope")}": supported values: "Cluster", '
                      '"Namespaced"')
    versions = spec.get("versions") or []
    if sum(1 for v in versions if v.get("storage")) != 1:
        errors.append("spec.versions: Invalid value: must have exactly one version marked as storage version")
    return errors


def established_status(crd: Obj, now: str) -> Obj:
    """What the apiextensions controllers write once the names are accepted and the API is served."""
    spec = crd.get("spec") or {}
    conditions = [{"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": now}
                  for kind, reason, message in (("NamesAccepted", "NoConflicts", "no conflicts found"),
                                                ("Established", "InitialNamesAccepted",
                                                 "the initial names have been accepted"))]
    return {"conditions": conditions, "acceptedNames": copy.deepcopy(spec.get("names") or {}),
            "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")]}


def resource_type(crd: Obj) -> ResourceType:
    """The resource a CRD serves: its group, storage version and plural."""
    spec = crd["spec"]
    names = spec["names"]
    version = next(v for v in spec["versions"] if v.get("storage"))
    subresources = frozenset(s for s in (version.get("subresources") or {}) if s == "status")
    schema = ((version.get("schema") or {}).get("openAPIV3Schema")) or {"type": "object",
                                                                        "x-kubernetes-preserve-unknown-fields": True}
    return ResourceType(spec["group"], version["name"], names["plural"], names["kind"],
                        namespaced=spec["scope"] == "Namespaced", subresources=subresources,
                        short_names=tuple(names.get("shortNames") or ()),
                        singular_name=names.get("singular") or names["kind"].lower(),
                        custom_schema=schema)


# ---- custom objects -------------------------------------------------------------------------------

def _prune(value: Any, schema: Obj, path: str, dropped: list[str]) -> None:
    """Drop the fields a structural schema does not specify (what the API server's pruning does)."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        additional = schema.get("additionalProperties")
        if properties is not None and not schema.get("x-kubernetes-preserve-unknown-fields") and not additional:
            for key in sorted(set(value) - set(properties)):
                if path == "" and key in _META_FIELDS:
                    continue
                dropped.append(f'unknown field "{path + "." if path else ""}{key}"')
                del value[key]
        for key, item in value.items():
            if properties is not None and key in properties:
                _prune(item, properties[key], f"{path}.{key}" if path else key, dropped)
            elif isinstance(additional, dict):
                _prune(item, additional, f"{path}.{key}" if path else key, dropped)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for n, item in enumerate(value):
            _prune(item, schema["items"], f"{path}[{n}]", dropped)


def _json_schema(schema: Any) -> Any:
    """OpenAPI v3 → JSON Schema for the validator: `nullable` becomes a null type, extensions go."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    return out


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def check(obj: Obj, schema: Obj) -> list[str]:
    """Prune `obj` in place and validate it; returns the warnings, raises 422 for invalid values."""
    dropped: list[str] = []
    body = {k: v for k, v in obj.items() if k not in _META_FIELDS}
    _prune(body, schema, "", dropped)
    for key in [k for k in obj if k not in _META_FIELDS and k not in body]:
        del obj[key]
    obj.update(body)
    top = _json_schema(schema)
    for name in _META_FIELDS:  # the API server owns these; a schema need not (and mostly does not) name them
        top.get("properties", {}).pop(name, None)
    validator = jsonschema.Draft4Validator(top)
    problems = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    if problems:
        raise invalid(obj.get("kind", ""), (obj.get("metadata") or {}).get("name", ""),
                      [f"{_where(e.absolute_path)}: Invalid value: {_short(e)}" for e in problems])
    return dropped


def _short(error: jsonschema.ValidationError) -> str:
    message = error.message
    return re.sub(r"\s+", " ", message)[:300]


def generation_changed(old: Obj, new: Obj) -> bool:
    """A custom object's generation moves when anything but metadata and status changes."""
    def body(o: Obj) -> Obj:
        return {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return body(old) != body(new)
