"""Preemption with graceful deletion, as on a cluster: a victim keeps its devices through its grace
period, and the preemptor is nominated ("waiting for N victims to stop") and bound only once the
victims are gone (issue 11.2; the embedded mode's rule)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobType
from tests.kube_emulator import KubeEmulator

from .booking import assert_not_overbooked
from .world import World


@pytest.fixture
def graceful() -> Iterator[KubeEmulator]:
    with KubeEmulator(seed=0, graceful_pod_deletion=True) as emulator:
        yield emulator


def spec(name: str, interactive: bool = False, **flags) -> JobSpec:
    return JobSpec(name=name, project="team-a", image="busybox", request=request_from_flags(**flags), user="alice",
                   type=JobType.INTERACTIVE if interactive else JobType.TRAIN, command=("sleep", "1000"))


def pass_(world: World) -> None:
    """One controller pass with the cluster's own parts around it, except that no terminating pod
    finishes stopping (its grace period has not run out)."""
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    world.device_plugin()
    for pod in world.kube.objects("pods"):
        if pod["spec"].get("nodeName") and pod["status"].get("phase") == "Pending" \
                and not pod["metadata"].get("deletionTimestamp"):
            world.kube.kubelet.start(pod["metadata"]["namespace"], pod["metadata"]["name"])
    assert_not_overbooked(world.kube)


def bound(world: World, job: str) -> bool:
    return any(p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
               for p in world.pods_of("team-a", job))


def events(world: World, reason: str) -> list[str]:
    return [e["message"] for e in world.kube.objects("events", "runai-team-a") if e["reason"] == reason]


@pytest.mark.parametrize("victims, preemptor", [
    ([{"gpu": "1"}], {"gpu": "1"}),  # a whole GPU
    ([{"gpu": "0.5"}, {"gpu": "0.5"}], {"gpu": "0.75"}),  # shares of one GPU: both halves must go
])
def test_the_preemptor_is_bound_only_once_its_victims_are_gone(graceful, tmp_path, victims, preemptor):
    world = World(graceful, tmp_path)
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 1)
    for n, flags in enumerate(victims):
        world.backend.submit(spec(f"train{n}", **flags))
    for _ in range(4):
        pass_(world)
    assert all(bound(world, f"train{n}") for n in range(len(victims)))

    world.backend.submit(spec("inter", interactive=True, **preemptor))
    for _ in range(3):  # evicted, then stopping through their grace period: they hold the GPU
        pass_(world)
        assert not bound(world, "inter")
    assert world.kube.objects("pods", "runai-team-a") and any(
        p["metadata"].get("deletionTimestamp") for p in world.kube.objects("pods", "runai-team-a"))
    [nominated] = events(world, "Nominated")
    assert f"waiting for {len(victims)} victim" in nominated
    assert world.backend.get_job("team-a", "inter").pending_reason

    world.kube.kubelet.finish_terminating()  # the victims' containers stopped
    pass_(world)
    pass_(world)
    assert bound(world, "inter")
    assert not any(bound(world, f"train{n}") for n in range(len(victims)))
