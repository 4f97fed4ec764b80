"""The consistency check finds what a crash or a race would break: each test builds a store and
a simulated GPU in one broken state (no daemon) and expects the one sentence that names it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runai_lite.backends.local.consistency import check_consistency, live_job_processes
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import Store
from runai_lite.gpu.simulated import SimulatedDriver
from runai_lite.model import Allocation, GpuRequest, JobSpec

NODE = "node-1"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Home, Store, SimulatedDriver]]:
    home = Home.at(tmp_path / "home")
    driver = SimulatedDriver(home.root, "A100-SXM4-40GB:1:mig-on,T4:1", faults="")
    store = Store(home.db)
    with store.write() as conn:
        for device in driver.gpus():
            model = driver.model(device.index)
            conn.execute("INSERT INTO gpus (node, gpu_index, uuid, model, memory_mib, memory_slices, mig_capable, "
                         "mig_enabled, simulated, dynamic_mig) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)",
                         (NODE, device.index, device.uuid, model.name, device.memory_mib, model.memory_slices,
                          int(model.mig_capable), int(device.mig_enabled), int(device.mig_enabled)))
        conn.execute("INSERT INTO projects (name, deserved_gpus, created_at) VALUES ('team-a', 1, 0)")
    yield home, store, driver
    store.close()
    driver.close()


def _job(store: Store, name: str, status: str, allocation: Allocation | None = None, pid: int | None = None) -> str:
    spec = JobSpec(name=name, project="team-a", image="busybox", request=GpuRequest(fraction=0.5), command=("true",))
    with store.write() as conn:
        row = store.insert_job(conn, spec, "alice", "process", time.time())
        store.update_job(conn, row.id, status=status, attempts=1,
                         allocation=allocation.model_dump_json() if allocation else None, pid=pid)
    return row.id


def _on_t4(share: int) -> Allocation:
    return Allocation(kind="fraction", node=NODE, gpu_indices=(1,), share_milli=share)


def _check(world) -> list[str]:
    home, store, driver = world
    return check_consistency(store, driver, NODE)


def test_a_consistent_node_has_nothing_to_report(world) -> None:
    _job(world[1], "half", "Running", _on_t4(500))
    _job(world[1], "done", "Succeeded")
    assert _check(world) == []


def test_a_finished_job_that_still_holds_its_allocation(world) -> None:
    _job(world[1], "done", "Succeeded", _on_t4(500))
    assert _check(world) == ["job team-a/done is Succeeded but still holds an allocation"]


def test_an_unknown_status_and_a_name_recorded_twice(world) -> None:
    store = world[1]
    first = _job(store, "twin", "Pending")
    second = _job(store, "other", "Pending")
    _job(store, "lost", "Pending")
    with store.write() as conn:  # past the unique index, as a hand-edited or corrupted store might be
        conn.execute("DROP INDEX jobs_live_name")
        conn.execute("UPDATE jobs SET name = 'twin' WHERE id = ?", (second,))
        conn.execute("UPDATE jobs SET status = 'Limbo' WHERE name = 'lost'")
    problems = _check(world)
    assert f"job team-a/twin is recorded 2 times: {first}, {second}" in problems
    assert any(p.startswith("job team-a/lost (") and p.endswith("has an unknown status 'Limbo'") for p in problems)


def test_shares_of_one_gpu_above_one(world) -> None:
    _job(world[1], "a", "Running", _on_t4(600))
    _job(world[1], "b", "Running", _on_t4(600))
    assert "snapshot: shares on node-1 GPU 1 sum to 1.2 (more than 1)" in _check(world)


def test_a_partition_on_the_gpu_that_the_store_does_not_know(world) -> None:
    world[2].create_mig(0, "1g.5gb", 6)
    assert _check(world) == ["GPU 0: 1g.5gb at slice 6 exists on the GPU but not in the store (leaked)"]


@pytest.fixture
def job_process() -> Iterator[callable]:
    started: list[subprocess.Popen] = []

    def start(job_id: str) -> int:
        child = subprocess.Popen(["sleep", "60"], env={**os.environ, "RUNAI_JOB_UUID": job_id})
        started.append(child)
        return child.pid

    yield start
    for child in started:
        child.kill()
        child.wait()


def test_a_process_of_a_finished_or_never_started_job(world, job_process) -> None:
    finished = _job(world[1], "finished", "Failed")
    queued = _job(world[1], "queued", "Pending")
    pids = job_process(finished), job_process(queued)
    assert live_job_processes({finished, queued}) == {finished: [pids[0]], queued: [pids[1]]}
    assert _check(world) == [
        f"job team-a/finished is Failed but its processes still run (pid {pids[0]})",
        f"job team-a/queued is Pending but its processes still run (pid {pids[1]})",
    ]


def test_a_job_started_before_its_preempted_victim_stopped(world, job_process) -> None:
    """The scheduler's snapshot leaves the stopping victim out, so only the processes show it."""
    victim = _job(world[1], "victim", "Preempted", _on_t4(1000))
    thief = _job(world[1], "thief", "Running", _on_t4(500))
    job_process(victim)
    job_process(thief)
    problems = _check(world)
    assert "running processes: shares on node-1 GPU 1 sum to 1.5 (more than 1)" in problems
    assert not [p for p in problems if p.startswith("snapshot:")]  # the plan's view is fine
