"""A controller reading the watch-fed cache does nothing when nothing changed: no API request, no
plan; anything that changed (an object, a timeout falling due) makes the next pass a whole one."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.cache import ListingReader, WatchCache
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.install import CONTROLLER
from runai_lite.backends.kube.reservations import TIMEOUT_SECONDS
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, Plan, Snapshot
from runai_lite.scheduler import plan

from .test_kube_cache import eventually
from .world import IMAGE, World

CONTROLLER_USER = f"system:serviceaccount:{k.SYSTEM_NAMESPACE}:{CONTROLLER}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingPlanner:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, snapshot: Snapshot) -> Plan:
        self.calls += 1
        return plan(snapshot)


@pytest.fixture
def world(kube_emulator, tmp_path) -> Iterator[World]:
    world = World(kube_emulator, tmp_path)
    world.add_gpu_node("t4-node", 4)
    world.backend.create_project("team", 4)
    stop = threading.Event()
    cache = WatchCache(world.controller_api)
    cache.start(stop)
    world.clock, world.planner, world.cache = Clock(), CountingPlanner(), cache  # type: ignore[attr-defined]
    world.controller = Controller(world.controller_api, IMAGE, planner=world.planner, reader=cache,
                                  monotonic=world.clock)
    world.controller.writes.observer = cache
    yield world
    stop.set()


def submit(world: World, name: str, gpu: str) -> None:
    world.backend.submit(JobSpec(name=name, project="team", image="busybox", request=request_from_flags(gpu=gpu),
                                 command=("sleep", "1")))


def caught_up(world: World) -> bool:
    """The cache shows what the API server has (the cluster's own parts wrote behind its back)."""
    def versions(objects) -> set[str]:
        return {o["metadata"]["resourceVersion"] for kind in ("nodes", "namespaces", "pods", "jobs", "allocations")
                for o in getattr(objects, kind)}
    return versions(world.cache.read_objects()) == versions(ListingReader(world.api).read_objects())


def controller_requests(world: World) -> list:
    return [r for r in world.kube.requests if r.user == CONTROLLER_USER]


def settle(world: World, limit: int = 10) -> None:
    """Until a whole pass over a caught-up cache writes nothing. `world.settle()` alone is not
    enough: its steps' passes may have read a cache that lagged, so the next pass can still bind."""
    for _ in range(limit):
        world.settle()
        eventually(lambda: caught_up(world))
        before = world.kube.resource_version
        world.controller.reconcile_once()
        eventually(lambda: caught_up(world))
        if world.kube.resource_version == before:
            return
    raise AssertionError(f"the controller kept writing after {limit} settled passes")


def test_an_idle_pass_makes_no_request_and_plans_nothing(world: World):
    submit(world, "whole", "1")
    submit(world, "shared", "0.5")
    settle(world)
    assert {p["metadata"]["name"].rsplit("-", 1)[0] for p in world.kube.objects("pods", "runai-team")
            if p["spec"].get("nodeName")} == {"whole", "shared"}
    before, planned = len(controller_requests(world)), world.planner.calls
    for _ in range(3):
        world.controller.reconcile_once()
    assert controller_requests(world)[before:] == []
    assert world.planner.calls == planned


def test_any_change_makes_the_next_pass_a_whole_one(world: World):
    submit(world, "first", "1")
    settle(world)
    planned = world.planner.calls
    submit(world, "second", "1")
    world.kube.job_controller.sync()
    eventually(lambda: caught_up(world))
    world.controller.reconcile_once()
    assert world.planner.calls == planned + 1
    assert any(r.subresource == "binding" for r in controller_requests(world))
    planned = world.planner.calls
    world.kube.patch("nodes", "t4-node", {"metadata": {"labels": {"zone": "b"}}})  # a node update: planned again
    eventually(lambda: caught_up(world))
    world.controller.reconcile_once()
    assert world.planner.calls == planned + 1


def test_a_timeout_falling_due_makes_a_pass_though_nothing_changed(world: World):
    """A reservation pod that never reports its GPU fails its fractions after TIMEOUT_SECONDS,
    which no watch event announces."""
    submit(world, "shared", "0.5")
    world.kube.job_controller.sync()
    eventually(lambda: caught_up(world))
    world.controller.reconcile_once()  # claims, and creates the reservation pod (no device plugin runs)
    eventually(lambda: caught_up(world))
    world.controller.reconcile_once()  # sees the reservation pod waiting: its timeout starts
    eventually(lambda: caught_up(world))
    world.controller.reconcile_once()
    [waiting] = [p["metadata"]["name"] for p in world.kube.objects("pods", k.RESERVATION_NAMESPACE)]
    planned = world.planner.calls
    world.controller.reconcile_once()
    assert world.planner.calls == planned  # idle: still waiting
    world.clock.now += TIMEOUT_SECONDS + 1
    world.controller.reconcile_once()
    assert world.planner.calls == planned + 1
    failed = world.kube.get("pods", waiting, k.RESERVATION_NAMESPACE)
    assert failed is None or failed["metadata"].get("deletionTimestamp")
