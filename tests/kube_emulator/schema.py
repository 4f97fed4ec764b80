"""Objects checked against the Kubernetes OpenAPI schemas that `kubernetes-validate` ships, as the API
server decodes and validates them:

- a value of the wrong type answers 400 BadRequest (the server cannot decode the body);
- a missing required field or a value outside an enum answers 422 Invalid;
- an unknown field is dropped with a warning (the server's default `fieldValidation=Warn`), so a typo
  in an object the code writes does not survive into what it reads back.

Validators are built once per kind and process (about 15 ms each) and take under a millisecond a call.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from typing import Any

import jsonschema
from referencing import Registry, Resource

from .errors import bad_request, invalid

SCHEMA_VERSION = "1.31.0"
_SCHEMAS = importlib.resources.files("kubernetes_validate").joinpath(
    f"kubernetes-json-schema/v{SCHEMA_VERSION}-local-strict")


@functools.cache
def _definitions() -> Resource:
    return Resource.from_contents(json.loads(_SCHEMAS.joinpath("_definitions.json").read_text()))


@functools.cache
def validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """The validator for a kind, or None when kubernetes-validate has no schema for it (a test's CRD)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 → rbac-v1
    path = _SCHEMAS.joinpath(f"{kind.lower()}-{group_version}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    registry = Resource.from_contents(schema) @ (_definitions() @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _where(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _drop_unknown(obj: Any, path: Any, extra: set[str]) -> None:
    target = obj
    for part in path:
        target = target[part]
    for key in extra:
        target.pop(key, None)


def check(obj: dict[str, Any]) -> list[str]:
    """Validate `obj` in place: drop unknown fields (returning a warning for each) and raise ApiError
    for wrong types (400) and missing or invalid values (422)."""
    v = validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    if v is None:
        return []
    warnings: list[str] = []
    for _ in range(10):  # dropping a field can only remove errors; a few rounds settle nested ones
        problems = list(v.iter_errors(obj))
        unknown = [e for e in problems if e.validator == "additionalProperties"]
        if not unknown:
            break
        for e in unknown:
            extra = set(e.instance) - set((e.schema or {}).get("properties") or {})
            warnings += [f'unknown field "{_where([*e.absolute_path, key])}"' for key in sorted(extra)]
            _drop_unknown(obj, e.absolute_path, extra)
    kind, name = obj.get("kind", ""), (obj.get("metadata") or {}).get("name", "")
    mistyped = [e for e in problems if e.validator == "type"]
    if mistyped:
        e = mistyped[0]
        raise bad_request(f'{kind} in version "{obj.get("apiVersion")}" cannot be handled as a {kind}: '
                          f"{_where(e.absolute_path)}: {e.message}")
    others = [e for e in problems if e.validator != "additionalProperties"]
    if others:
        raise invalid(kind, name, [f"{_where(e.absolute_path)}: Invalid value: {e.message}" for e in others])
    return warnings

