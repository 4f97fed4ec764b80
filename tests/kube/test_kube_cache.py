"""The watch-fed cache: it shows what listing shows, its own writes at once (expectations), and it
recovers when its watches end or expire."""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from runai_lite.backends.kube.cache import Backoff, Expectations, ListingReader, WatchCache
from runai_lite.backends.kube.cluster import ClusterObjects
from runai_lite.backends.kube.lease import FencedApi
from runai_lite.backends.kube.meta import set_annotations
from runai_lite.backends.kube.rest import core

from .world import World


def names(objects: ClusterObjects) -> dict[str, set[tuple[str, str]]]:
    return {kind: {(o["metadata"].get("namespace") or "", o["metadata"]["name"]) for o in getattr(objects, kind)}
            for kind in ("nodes", "namespaces", "pods", "jobs")}


def versions(objects: ClusterObjects) -> dict[str, str]:
    return {o["metadata"]["uid"]: o["metadata"]["resourceVersion"]
            for kind in ("nodes", "namespaces", "pods", "jobs") for o in getattr(objects, kind)}


def eventually(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, "the cache never caught up"
        time.sleep(0.02)


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 2)
    return world


@pytest.fixture
def cache(world: World) -> Iterator[WatchCache]:
    stop = threading.Event()
    cache = WatchCache(world.api)
    cache.start(stop)
    yield cache
    stop.set()


def pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def test_the_cache_shows_what_listing_shows(world: World, cache: WatchCache):
    listing = ListingReader(world.api)
    assert names(cache.read_objects()) == names(listing.read_objects())
    world.kube.create("pods", pod("a"), "default")
    world.kube.create("pods", pod("b"), "default")
    world.kube.patch("nodes", "t4-node", {"metadata": {"labels": {"zone": "a"}}})
    world.kube.delete("pods", "a", "default", gracePeriodSeconds=0)
    eventually(lambda: versions(cache.read_objects()) == versions(listing.read_objects()))
    read = cache.read_objects()
    assert ("default", "b") in names(read)["pods"] and ("default", "a") not in names(read)["pods"]
    assert {(p["kind"], p["apiVersion"]) for p in read.pods} == {("Pod", "v1")}


def test_a_read_with_nothing_outstanding_makes_no_request(world: World, cache: WatchCache):
    listing = ListingReader(world.api)
    eventually(lambda: versions(cache.read_objects()) == versions(listing.read_objects()))
    before = len(world.kube.requests)
    cache.read_objects()
    assert world.kube.requests[before:] == []


def test_its_own_writes_show_in_the_very_next_read(world: World, cache: WatchCache):
    cache.read_objects()
    writes = FencedApi(world.api, lambda: None, observer=cache)
    created = writes.create(core("pods", "default"), pod("mine"))
    writes.merge_patch(core("pods", "default", "mine"), {"metadata": {"annotations": {"x": "1"}}})
    read = {p["metadata"]["name"]: p for p in cache.read_objects().pods}
    assert read["mine"]["metadata"]["annotations"] == {"x": "1"}
    assert read["mine"]["metadata"]["uid"] == created["metadata"]["uid"]
    writes.create(core("pods", "default", "mine", "binding"),
                  {"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "mine"},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": "t4-node"}})
    assert {p["metadata"]["name"]: p for p in cache.read_objects().pods}["mine"]["spec"]["nodeName"] == "t4-node"
    writes.delete(core("pods", "default", "mine"))
    assert "mine" not in {p["metadata"]["name"] for p in cache.read_objects().pods
                          if not p["metadata"].get("deletionTimestamp")}


@pytest.mark.parametrize("how", ["the stream ends", "the history is compacted"])
def test_the_cache_recovers_when_its_watches_end_or_expire(world: World, cache: WatchCache, how: str):
    cache.read_objects()
    if how == "the history is compacted":
        world.kube.create("pods", pod("before"), "default")
        world.kube.compact()  # a watch resuming from an older version gets 410 Gone and lists again
    world.kube.end_watches()
    world.kube.create("pods", pod("after"), "default")
    eventually(lambda: ("default", "after") in names(cache.read_objects())["pods"])
    assert names(cache.read_objects()) == names(ListingReader(world.api).read_objects())


def test_an_expectation_past_its_deadline_is_dropped_and_reported():
    now = [0.0]
    expectations = Expectations(monotonic=lambda: now[0], seconds=5)
    expectations.expect(("pods", "default", "p"), lambda obj: obj is not None)
    assert expectations.outstanding(lambda key: None) == (1, False)
    now[0] = 6
    assert expectations.outstanding(lambda key: None) == (0, True)  # the reader lists instead
    expectations.expect(("pods", "default", "p"), lambda obj: obj is not None)
    assert expectations.outstanding(lambda key: {"metadata": {}}) == (0, False)


def listed_pages(world: World, resource: str) -> list[dict[str, str]]:
    return [r.query for r in world.kube.requests_for("list", resource)]


def test_the_informers_list_in_pages(world: World):
    for n in range(5):
        world.kube.create("pods", pod(f"p{n}"), "default")
    stop = threading.Event()
    cache = WatchCache(world.api, page_size=2)
    cache.start(stop)
    try:
        assert names(cache.read_objects()) == names(ListingReader(world.api).read_objects())
        pages = listed_pages(world, "pods")
        assert [p.get("limit") for p in pages[:3]] == ["2", "2", "2"]
        assert "continue" not in pages[0] and all("continue" in p for p in pages[1:3])
    finally:
        stop.set()


def test_an_expired_list_is_listed_again_at_once(world: World):
    world.kube.create("pods", pod("a"), "default")
    world.kube.fail_next(410, verb="list", resource="pods", message="The provided continue parameter is too old")
    stop = threading.Event()
    cache = WatchCache(world.api, sync_seconds=0.5)  # longer than a retry after a backoff would take
    cache.start(stop)
    try:
        eventually(lambda: cache.informers["pods"].synced.is_set())
        assert ("default", "a") in names(cache.read_objects())["pods"]
        assert cache.informers["pods"].backoff.failures == 0
    finally:
        stop.set()


def test_a_failing_list_is_retried_after_a_growing_backoff(world: World):
    world.kube.fail_next(500, verb="list", resource="nodes", times=2)
    stop = threading.Event()
    cache = WatchCache(world.api)
    cache.start(stop)
    try:
        eventually(lambda: cache.informers["nodes"].synced.is_set())
        assert [r.status for r in world.kube.requests_for("list", "nodes")][:3] == [500, 500, 200]
        assert ("", "t4-node") in {(n["metadata"].get("namespace") or "", n["metadata"]["name"])
                                   for n in cache.read_objects().nodes}
    finally:
        stop.set()


def test_the_backoff_doubles_with_jitter_up_to_its_cap_and_starts_again_after_a_success():
    import random

    backoff = Backoff(base=0.5, cap=4.0, jitter=1.0, rng=random.Random(1))
    delays = [backoff.next() for _ in range(6)]
    for delay, plain in zip(delays, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]):
        assert plain <= delay < 2 * plain
    assert len(set(delays)) == len(delays)  # jittered: replicas do not retry in step
    backoff.reset()
    assert 0.5 <= backoff.next() < 1.0


def test_a_watch_resumes_from_the_last_bookmark(world: World, cache: WatchCache):
    cache.read_objects()
    world.kube.create("configmaps", {"metadata": {"name": "unwatched"}}, "default")  # moves the version on
    bookmarked = str(world.kube.resource_version)
    # (again until it arrives: the watch may not be open yet)
    eventually(lambda: world.kube.send_bookmarks() or cache.informers["pods"].version == bookmarked)
    before = len(world.kube.requests_for("watch", "pods"))
    world.kube.end_watches()
    eventually(lambda: len(world.kube.requests_for("watch", "pods")) > before)
    assert world.kube.requests_for("watch", "pods")[-1].query["resourceVersion"] == bookmarked
    assert world.kube.requests_for("watch", "pods")[-1].query["allowWatchBookmarks"] == "true"


def test_changes_missed_while_disconnected_and_compacted_away_are_recovered_by_listing(world: World,
                                                                                       cache: WatchCache):
    world.kube.create("pods", pod("stays"), "default")
    world.kube.create("pods", pod("goes"), "default")
    eventually(lambda: ("default", "goes") in names(cache.read_objects())["pods"])
    generation = cache.generation
    world.kube.fail_next(500, verb="watch", resource="pods", times=1)  # the reconnect fails once
    world.kube.end_watches()
    world.kube.delete("pods", "goes", "default", gracePeriodSeconds=0)
    world.kube.patch("pods", "stays", {"metadata": {"labels": {"seen": "yes"}}}, "default")
    world.kube.compact()  # the missed events are gone from the history: 410, then a fresh list
    eventually(lambda: ("default", "goes") not in names(cache.read_objects())["pods"])
    read = {p["metadata"]["name"]: p for p in cache.read_objects().pods}
    assert read["stays"]["metadata"]["labels"] == {"seen": "yes"}
    assert cache.generation > generation
    assert names(cache.read_objects()) == names(ListingReader(world.api).read_objects())


def test_the_version_of_a_read_moves_only_when_something_changed(world: World, cache: WatchCache):
    first = cache.read_objects().version
    assert cache.read_objects().version == first
    world.kube.create("configmaps", {"metadata": {"name": "unwatched"}}, "default")
    time.sleep(0.2)
    assert cache.read_objects().version == first
    world.kube.create("pods", pod("new"), "default")
    eventually(lambda: cache.read_objects().version != first)


def test_what_a_pass_changes_on_the_objects_it_read_never_reaches_the_cache(world: World, cache: WatchCache):
    """No deep copy per read: a pass gets shallow copies, and the controller replaces nested
    parts instead of changing them in place (`set_annotations`, a bind's `spec`)."""
    world.kube.create("pods", pod("a"), "default")
    eventually(lambda: ("default", "a") in names(cache.read_objects())["pods"])
    original = copy.deepcopy({p["metadata"]["name"]: p for p in cache.read_objects().pods}["a"])
    read = {p["metadata"]["name"]: p for p in cache.read_objects().pods}["a"]
    set_annotations(read, {"x": "1"})
    read["spec"] = {**read["spec"], "nodeName": "t4-node"}
    read["status"] = {"phase": "Running"}
    assert {p["metadata"]["name"]: p for p in cache.read_objects().pods}["a"] == original
