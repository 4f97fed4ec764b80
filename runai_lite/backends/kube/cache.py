"""Where the controller and the backend read the cluster from: the `ObjectReader` seam.

`read_objects()` returns one consistent-enough `ClusterObjects` (KAI's data lister); `build_view`
turns it into the scheduler's snapshot without I/O. `ListingReader` lists every kind on each call,
which is what a level-triggered pass needs and all that a CLI command needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from . import conventions as k
from .cluster import ClusterObjects, is_ours
from .meta import Meta
from .predicates import Volumes
from .rest import ApiError, core, group

if TYPE_CHECKING:
    from .client import KubeApi


class ObjectReader(Protocol):
    def read_objects(self) -> ClusterObjects: ...


class ListingReader:
    """A handful of list calls per read: nothing kept between reads."""

    def __init__(self, api: KubeApi):
        self.api = api

    def read_objects(self) -> ClusterObjects:
        pods = _typed(self.api.list(core("pods")), "v1", "Pod")
        return ClusterObjects(
            nodes=_typed(self.api.list(core("nodes")), "v1", "Node"),
            namespaces=_typed(self.api.list(core("namespaces")), "v1", "Namespace"),
            pods=pods,
            jobs=_typed(self.api.list(group("batch/v1", "jobs"), label_selector=k.JOB_NAME_LABEL),
                        "batch/v1", "Job"),
            volumes=read_volumes(self.api, pods),
        )


def read_volumes(api: KubeApi, pods: list[dict[str, Any]]) -> Volumes:
    """The claims of our pods waiting to be placed, with the volumes and classes they name; read
    only when such a pod mounts one (most passes: none)."""
    namespaces = sorted({Meta(p).namespace or "" for p in pods if is_ours(p) and not p["spec"].get("nodeName")
                         and any(v.get("persistentVolumeClaim") for v in p["spec"].get("volumes") or [])})
    if not namespaces:
        return Volumes()
    claims = {(Meta(c).namespace or "", Meta(c).name): c
              for ns in namespaces for c in _list_or_empty(api, core("persistentvolumeclaims", ns))}
    volumes = {Meta(v).name: v for v in _list_or_empty(api, core("persistentvolumes"))}
    classes = {Meta(c).name: c for c in _list_or_empty(api, group("storage.k8s.io/v1", "storageclasses"))}
    return Volumes(claims=claims, volumes=volumes, classes=classes)


def _list_or_empty(api: KubeApi, path: str) -> list[dict[str, Any]]:
    """A kind the API server does not serve (a trimmed test server) is as good as none of it."""
    try:
        return api.list(path)
    except ApiError as error:
        if error.not_found:
            return []
        raise


def _typed(items: list[dict[str, Any]], api_version: str, kind: str) -> list[dict[str, Any]]:
    """List items come without `apiVersion` and `kind`; owner references and Events need them."""
    for item in items:
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    return items
