"""Where the controller and the backend read the cluster from: the `ObjectReader` seam.

`read_objects()` returns one consistent-enough `ClusterObjects` (KAI's data lister); `build_view`
turns it into the scheduler's snapshot without I/O. `ListingReader` lists every kind on each call,
which is what a level-triggered pass needs and all that a CLI command needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from . import conventions as k
from .cluster import ClusterObjects
from .rest import core, group

if TYPE_CHECKING:
    from .client import KubeApi


class ObjectReader(Protocol):
    def read_objects(self) -> ClusterObjects: ...


class ListingReader:
    """A handful of list calls per read: nothing kept between reads."""

    def __init__(self, api: KubeApi):
        self.api = api

    def read_objects(self) -> ClusterObjects:
        return ClusterObjects(
            nodes=_typed(self.api.list(core("nodes")), "v1", "Node"),
            namespaces=_typed(self.api.list(core("namespaces")), "v1", "Namespace"),
            pods=_typed(self.api.list(core("pods")), "v1", "Pod"),
            jobs=_typed(self.api.list(group("batch/v1", "jobs"), label_selector=k.JOB_NAME_LABEL),
                        "batch/v1", "Job"),
        )


def _typed(items: list[dict[str, Any]], api_version: str, kind: str) -> list[dict[str, Any]]:
    """List items come without `apiVersion` and `kind`; owner references and Events need them."""
    for item in items:
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
    return items
