"""Where the controller and the backend read the cluster from: the `ObjectReader` seam.

`read_objects()` returns one consistent-enough `ClusterObjects` (KAI's data lister); `ViewBuilder`
turns it into the scheduler's snapshot without I/O. Two readers:

- `ListingReader` lists every kind on each call: all a CLI command needs, and what tests driving
  passes by hand use;
- `WatchCache` keeps what list-then-watch streams (client-go's informers) report, so a pass reads
  memory instead of listing every pod. What the controller itself wrote but the streams have not
  shown yet is tracked in an expectations store (Kueue's): `read_objects()` waits until the cache
  has seen each of those writes, or, past `EXPECTATION_SECONDS`, reads by listing, so a pass never
  plans from a state older than its own last writes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ...errors import OperationalError
from . import allocations
from . import conventions as k
from .cluster import ClusterObjects, is_ours
from .meta import Meta
from .predicates import Volumes
from .rest import ApiError, core, group

if TYPE_CHECKING:
    from .client import KubeApi

log = logging.getLogger("runai_lite.controller")

EXPECTATION_SECONDS = 5.0
PAGE_SIZE = 500  # items per page of an informer's list (client-go's default)
VOLUME_SECONDS = 5.0  # how long the claims pending pods mount are taken as read
WATCH_SECONDS = 300  # a watch is restarted (from where it was) after this long, as client-go's are

# What the controller reads: name -> (path, selector, apiVersion, kind). Reservation pods and the
# pods of other schedulers are pods too (they take devices and node room).
WATCHED: dict[str, tuple[str, dict[str, str], str, str]] = {
    "nodes": (core("nodes"), {}, "v1", "Node"),
    "namespaces": (core("namespaces"), {}, "v1", "Namespace"),
    "pods": (core("pods"), {}, "v1", "Pod"),
    "jobs": (group("batch/v1", "jobs"), {"label_selector": k.JOB_NAME_LABEL}, "batch/v1", "Job"),
    "allocations": (allocations.path(), {}, allocations.API_VERSION, allocations.KIND),
}
WATCHES = tuple((path, selector) for path, selector, _, _ in WATCHED.values())


class ObjectReader(Protocol):
    def read_objects(self) -> ClusterObjects: ...


class ListingReader:
    """A handful of list calls per read: nothing kept between reads."""

    def __init__(self, api: KubeApi, allocations_required: bool = True):
        self.api = api
        # The controller cannot decide without the Allocation kind; a CLI reading a cluster where
        # runai-lite is not installed just sees nothing allocated.
        self.allocations_required = allocations_required

    def read_objects(self) -> ClusterObjects:
        pods = _typed(self.api.list(core("pods")), "v1", "Pod")
        return ClusterObjects(
            nodes=_typed(self.api.list(core("nodes")), "v1", "Node"),
            namespaces=_typed(self.api.list(core("namespaces")), "v1", "Namespace"),
            pods=pods,
            jobs=_typed(self.api.list(group("batch/v1", "jobs"), label_selector=k.JOB_NAME_LABEL),
                        "batch/v1", "Job"),
            volumes=read_volumes(self.api, pods),
            allocations=read_allocations(self.api, self.allocations_required),
        )


def read_allocations(api: KubeApi, required: bool = True) -> list[dict[str, Any]]:
    try:
        return _typed(api.list(allocations.path()), allocations.API_VERSION, allocations.KIND)
    except ApiError as error:
        if error.not_found and not required:
            return []
        if error.not_found:
            raise OperationalError(f"the cluster does not serve {allocations.CRD_NAME}, where runai-lite records "
                                   "what each pod holds: install it with `runai-adm install`") from None
        raise


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


# --------------------------------------------------------------------------------------------
# The watch-fed cache

Key = tuple[str, str | None, str]  # (kind name in WATCHED, namespace, name)


class _Expired(Exception):
    """The watch cannot resume (410 Gone, or an ERROR event): list again."""


class Expectations:
    """Writes this controller made that the cache has not observed yet (Kueue's expectations)."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic, seconds: float = EXPECTATION_SECONDS):
        self.monotonic = monotonic
        self.seconds = seconds
        self._pending: dict[Key, tuple[Callable[[dict[str, Any] | None], bool], float]] = {}

    def expect(self, key: Key, seen: Callable[[dict[str, Any] | None], bool]) -> None:
        self._pending[key] = (seen, self.monotonic() + self.seconds)

    def outstanding(self, lookup: Callable[[Key], dict[str, Any] | None]) -> tuple[int, bool]:
        """How many writes are still unseen, and whether one of them waited past its deadline."""
        now, expired = self.monotonic(), False
        for key, (seen, deadline) in list(self._pending.items()):
            if seen(lookup(key)):
                del self._pending[key]
            elif now >= deadline:
                del self._pending[key]
                expired = True
        return len(self._pending), expired


def _version(obj: dict[str, Any] | None) -> str | None:
    return Meta(obj).resource_version if obj is not None else None


def _not_older(current: str | None, expected: str) -> bool:
    """resourceVersions are opaque, but etcd's (and the emulator's) are increasing integers."""
    if current is None:
        return False
    if current.isdigit() and expected.isdigit():
        return int(current) >= int(expected)
    return current == expected


class Backoff:
    """Jittered exponential backoff (client-go's, for a watch that keeps failing): each failure
    doubles the wait up to `cap`, a random factor in [1, 1 + jitter) spreads the replicas' retries,
    and a success starts again from `base`."""

    def __init__(self, base: float = 0.5, cap: float = 30.0, jitter: float = 1.0,
                 rng: random.Random | None = None):
        self.base, self.cap, self.jitter = base, cap, jitter
        self.rng = rng or random.Random()
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.base * 2 ** self.failures)
        self.failures += 1
        return delay * (1 + self.jitter * self.rng.random())

    def reset(self) -> None:
        self.failures = 0


class _Informer:
    """One kind's list-then-watch loop (a client-go reflector): a paginated list, then watches that
    resume from the last resourceVersion seen (a BOOKMARK moves it on without an object); a 410 Gone
    or an ERROR event lists again at once, other failures after a jittered backoff."""

    def __init__(self, cache: WatchCache, name: str):
        self.cache = cache
        self.name = name
        self.path, self.selector, self.api_version, self.kind = WATCHED[name]
        self.items: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.synced = threading.Event()
        self.version = ""  # where the next watch resumes
        self.backoff = Backoff(rng=cache.rng)
        self._values: list[dict[str, Any]] | None = None  # `items` as a list, until the next change

    def _key(self, obj: dict[str, Any]) -> tuple[str | None, str]:
        return Meta(obj).namespace, Meta(obj).name

    def _typed(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj.setdefault("apiVersion", self.api_version)
        obj.setdefault("kind", self.kind)
        return obj

    def values(self) -> list[dict[str, Any]]:
        """The objects, as a new list of shallow copies: a pass may replace an object's top-level
        fields (its `metadata` after a patch, say) without touching the cache; nested ones are
        never changed in place (`meta.set_annotations` copies)."""
        if self._values is None:
            self._values = list(self.items.values())
        return [dict(obj) for obj in self._values]

    def _changed(self) -> None:
        """Called with the cache's lock held, after `items` changed."""
        self._values = None
        self.cache.generation += 1
        self.cache.changed.notify_all()

    def run(self, stop: threading.Event) -> None:
        api = self.cache.api
        while not stop.is_set():
            try:
                items, self.version = api.list_with_version(self.path, page_size=self.cache.page_size,
                                                            **self.selector)
                with self.cache.changed:
                    self.items = {self._key(o): self._typed(o) for o in items}
                    self.synced.set()
                    self._changed()
                self.cache.on_change()
                while not stop.is_set():
                    for event in api.watch(self.path, self.version, timeout_seconds=self.cache.watch_seconds,
                                           **self.selector):
                        kind, obj = event.get("type"), event.get("object") or {}
                        if kind == "ERROR":
                            raise _Expired(str(obj.get("message") or obj))
                        self.version = _version(obj) or self.version
                        self.backoff.reset()
                        if kind == "BOOKMARK":
                            continue
                        with self.cache.changed:
                            if kind == "DELETED":
                                self.items.pop(self._key(obj), None)
                            else:
                                self.items[self._key(obj)] = self._typed(obj)
                            self._changed()
                        self.cache.on_change()
                        if stop.is_set():
                            return
            except _Expired as error:
                log.info("watch of %s expired (%s): listing again", self.name, error)
            except ApiError as error:
                if error.status == 410:  # a continue token or a resourceVersion too old: list again
                    log.info("list or watch of %s expired: listing again", self.name)
                else:
                    log.warning("watch of %s failed: %s", self.name, error)
                    stop.wait(self.backoff.next())
            except Exception as error:  # the API went away: list again after a while
                log.warning("watch of %s ended: %s", self.name, error)
                stop.wait(self.backoff.next())


class WatchCache:
    """Objects as list-then-watch streams report them, with expectations for our own writes.

    `generation` counts the changes the streams brought; `read_objects()` returns it (with the
    version of the claims read) as `ClusterObjects.version`: two reads with the same version saw
    the same objects (the controller then skips the pass). Also the write observer of the controller's
    `FencedApi`: it is told of each write (`before`, `written`) and expects to see its effect."""

    def __init__(self, api: KubeApi, on_change: Callable[[], None] = lambda: None,
                 monotonic: Callable[[], float] = time.monotonic, expectation_seconds: float = EXPECTATION_SECONDS,
                 sync_seconds: float = 30.0, page_size: int = PAGE_SIZE, watch_seconds: int = WATCH_SECONDS,
                 volume_seconds: float = VOLUME_SECONDS, rng: random.Random | None = None):
        self.api = api
        self.on_change = on_change
        self.sync_seconds = sync_seconds
        self.page_size = page_size
        self.watch_seconds = watch_seconds
        self.rng = rng or random.Random()
        self.changed = threading.Condition()
        self.generation = 0
        self.expectations = Expectations(monotonic, expectation_seconds)
        self.informers = {name: _Informer(self, name) for name in WATCHED}
        self._before: dict[Key, str | None] = {}
        self.monotonic = monotonic
        self.volume_seconds = volume_seconds
        self._volumes, self._volumes_version = Volumes(), 0
        self._volumes_generation, self._volumes_until = -1, 0.0

    def start(self, stop: threading.Event) -> None:
        for informer in self.informers.values():
            threading.Thread(target=informer.run, args=(stop,), name=f"informer {informer.name}",
                             daemon=True).start()

    def _lookup(self, key: Key) -> dict[str, Any] | None:
        name, namespace, obj_name = key
        return self.informers[name].items.get((namespace, obj_name))

    def read_objects(self) -> ClusterObjects:
        deadline = time.monotonic() + self.sync_seconds
        with self.changed:
            while True:
                synced = all(i.synced.is_set() for i in self.informers.values())
                pending, expired = self.expectations.outstanding(self._lookup) if synced else (0, False)
                if synced and not pending:
                    break
                if expired or time.monotonic() >= deadline:
                    # the streams lag (or never started): read what is there now
                    log.info("the watch cache lags behind; listing instead")
                    return ListingReader(self.api).read_objects()
                self.changed.wait(timeout=0.1)
            snapshot = {name: i.values() for name, i in self.informers.items()}
            generation = self.generation
        pods = snapshot["pods"]
        volumes = self._volumes_of(pods, generation)
        return ClusterObjects(nodes=snapshot["nodes"], namespaces=snapshot["namespaces"], pods=pods,
                              jobs=snapshot["jobs"], volumes=volumes, allocations=snapshot["allocations"],
                              version=(generation, self._volumes_version))

    def _volumes_of(self, pods: list[dict[str, Any]], generation: int) -> Volumes:
        """The claims pending pods mount are not watched: read again when anything changed, or
        `volume_seconds` after the last read (a claim being bound changes no pod)."""
        now = self.monotonic()
        if generation != self._volumes_generation or now >= self._volumes_until:
            volumes = read_volumes(self.api, pods)
            if volumes != self._volumes:
                self._volumes, self._volumes_version = volumes, self._volumes_version + 1
            self._volumes_generation, self._volumes_until = generation, now + self.volume_seconds
        return self._volumes

    # -- the write observer ----------------------------------------------------------------------

    def before(self, path: str) -> None:
        key = _cached_key(path)
        if key is not None:
            with self.changed:
                self._before[key] = _version(self._lookup(key))

    def written(self, verb: str, path: str, result: Any) -> None:
        """Expect the cache to show this write: the version it returned, the object gone (or going),
        or, for a subresource (binding, eviction) that returns no object, any change."""
        key = _cached_key(path, result if isinstance(result, dict) else None)
        if key is None:
            return
        with self.changed:
            before = self._before.pop(key, None)
            version = _version(result) if isinstance(result, dict) and _is_object(result) else None
            if verb == "delete":
                self.expectations.expect(key, lambda obj: obj is None or Meta(obj).deleting)
            elif version is not None and not _subresource(path):
                # (deleted since by someone else: unseen until its deadline, then the reader lists)
                self.expectations.expect(key, lambda obj: _not_older(_version(obj), version))
            else:
                self.expectations.expect(key, lambda obj: obj is None or _version(obj) != before)


def _is_object(result: dict[str, Any]) -> bool:
    return result.get("kind") not in ("Status", "Binding", "Eviction")


def _parts(path: str) -> tuple[str | None, str | None, str | None, str | None]:
    """(kind name in WATCHED, namespace, name, subresource) of an API path; kind None when not cached."""
    segments = [s for s in path.split("/") if s]
    width = 2 if segments[0] == "api" else 3  # api/v1 or apis/group/version
    prefix, segments = "/" + "/".join(segments[:width]), segments[width:]
    namespace = None
    if len(segments) >= 2 and segments[0] == "namespaces" and len(segments) > 2:
        namespace, segments = segments[1], segments[2:]
    resource = segments[0] if segments else ""
    name = segments[1] if len(segments) > 1 else None
    sub = segments[2] if len(segments) > 2 else None
    kind = resource if resource in WATCHED and WATCHED[resource][0] == f"{prefix}/{resource}" else None
    return kind, namespace, name, sub


def _subresource(path: str) -> bool:
    return _parts(path)[3] is not None


def _cached_key(path: str, created: dict[str, Any] | None = None) -> Key | None:
    kind, namespace, name, _ = _parts(path)
    if kind is None:
        return None
    if name is None:  # a create on the collection: the name is in what came back
        if created is None or not _is_object(created):
            return None
        name = Meta(created).name
    return kind, namespace, name
