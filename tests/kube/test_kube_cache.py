"""The watch-fed cache: it shows what listing shows, its own writes at once (expectations), and it
recovers when its watches end or expire."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from runai_lite.backends.kube.cache import Expectations, ListingReader, WatchCache
from runai_lite.backends.kube.cluster import ClusterObjects
from runai_lite.backends.kube.lease import FencedApi
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
