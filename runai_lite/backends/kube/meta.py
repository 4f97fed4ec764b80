"""A typed view over the `metadata` of a raw API object (kopf's `body.meta`).

API objects stay the plain dicts `kubectl get -o json` shows; `Meta(obj)` reads them without the
`(obj["metadata"].get("annotations") or {})` dance: absent maps read as empty, absent strings as
None. The view reads through to the dict, so it sees writes made after it was taken; it never
writes. Pure module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_EMPTY: Mapping[str, str] = {}


class Meta:
    __slots__ = ("_obj",)

    def __init__(self, obj: Mapping[str, Any]):
        self._obj = obj

    @property
    def _metadata(self) -> Mapping[str, Any]:
        return self._obj.get("metadata") or _EMPTY

    @property
    def name(self) -> str:
        return str(self._metadata.get("name") or "")

    @property
    def namespace(self) -> str | None:
        return self._metadata.get("namespace")

    @property
    def uid(self) -> str | None:
        return self._metadata.get("uid") or None

    @property
    def resource_version(self) -> str | None:
        return self._metadata.get("resourceVersion") or None

    @property
    def annotations(self) -> Mapping[str, str]:
        return self._metadata.get("annotations") or _EMPTY

    @property
    def labels(self) -> Mapping[str, str]:
        return self._metadata.get("labels") or _EMPTY

    @property
    def owner_references(self) -> list[Mapping[str, Any]]:
        return list(self._metadata.get("ownerReferences") or [])

    @property
    def finalizers(self) -> list[str]:
        return list(self._metadata.get("finalizers") or [])

    @property
    def creation_timestamp(self) -> str | None:
        return self._metadata.get("creationTimestamp")

    @property
    def deletion_timestamp(self) -> str | None:
        return self._metadata.get("deletionTimestamp")

    @property
    def deleting(self) -> bool:
        """Marked for deletion: graceful deletion under way, or finalizers still to run."""
        return bool(self._metadata.get("deletionTimestamp"))

    def annotation(self, key: str) -> str | None:
        return self.annotations.get(key)

    def label(self, key: str) -> str | None:
        return self.labels.get(key)


def set_annotations(obj: dict[str, Any], values: Mapping[str, Any]) -> None:
    """Mirror annotations just written to the API onto the local copy of the object. Copies
    `metadata` rather than changing it: the object may be a shallow copy of a cached one."""
    meta = obj.get("metadata") or {}
    obj["metadata"] = {**meta, "annotations": {**(meta.get("annotations") or {}), **values}}
