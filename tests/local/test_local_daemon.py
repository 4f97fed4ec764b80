"""The daemon as a whole: dynamic MIG with preemption and lazy deallocation, restarts after a
SIGKILL, one daemon per home, and the node-role refusals."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_start, daemon_status, daemon_stop, local_init
from runai_lite.backends.local.control import daemon_running
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.paths import lock_held
from runai_lite.backends.local.tracking.files import AttemptFiles
from runai_lite.errors import NotFoundError, UserError
from runai_lite.model import GpuRequest, JobType

from .conftest import make_backend, spec, wait_for, wait_status

pytestmark = pytest.mark.e2e

TEN_GB = 10 * 10**9


def _instances(backend: LocalBackend) -> list:
    return list(backend.list_nodes()[0].gpus[0].mig_instances)


def _kinds(backend: LocalBackend, name: str) -> list[str]:
    return [e.kind for e in backend.get_job("team-a", name).events]


def test_quickstart_preempts_one_training_job_and_requeues_it(mig_backend: LocalBackend) -> None:
    b = mig_backend
    b.submit(spec("mig1", "sleep", "600", request=GpuRequest(memory_bytes=TEN_GB)))
    b.submit(spec("mig2", "sleep", "600", request=GpuRequest(mig_profile="2g.10gb")))
    b.submit(spec("mig3", "sleep", "600", request=GpuRequest(mig_profile="2g.10gb")))
    for name in ("mig1", "mig2", "mig3"):
        wait_status(b, name, "Running")
    parts = _instances(b)
    assert len(parts) == 3 and {p.state for p in parts} == {"used"} and {p.size for p in parts} == {2}
    b.submit(spec("mig1-int", "sleep", "600", request=GpuRequest(memory_bytes=20 * 10**9), type=JobType.INTERACTIVE))
    wait_status(b, "mig1-int", "Running")
    interactive = b.get_job("team-a", "mig1-int")
    assert interactive.allocation.mig_profile == "3g.20gb"
    victims = [n for n in ("mig1", "mig2", "mig3") if "Preempted" in _kinds(b, n)]
    assert len(victims) == 1
    victim = victims[0]
    wait_for(lambda: b.get_job("team-a", victim).status.value == "Pending", what="the victim to be requeued")
    assert {"Requeued", "PartitionDestroyed"} <= set(_kinds(b, victim))
    assert sorted(p.profile for p in _instances(b) if p.state == "used")[-1] == "3g.20gb"
    b.delete_jobs("team-a", ["mig1-int"])
    wait_status(b, victim, "Running")
    assert all(b.get_job("team-a", n).status.value == "Running" for n in ("mig1", "mig2", "mig3"))


def test_a_finished_jobs_partition_stays_idle_and_is_reused(mig_backend: LocalBackend) -> None:
    b = mig_backend
    b.submit(spec("first", "true", request=GpuRequest(mig_profile="3g.20gb")))
    wait_status(b, "first", "Succeeded")
    (idle,) = _instances(b)
    assert (idle.profile, idle.state, idle.job) == ("3g.20gb", "idle", None)
    b.submit(spec("second", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES; sleep 600",
                  request=GpuRequest(mig_profile="3g.20gb")))
    wait_status(b, "second", "Running")
    (used,) = _instances(b)
    assert (used.uuid, used.state, used.job) == (idle.uuid, "used", "team-a/second")
    assert "PartitionCreated" not in _kinds(b, "second")
    assert wait_for(lambda: list(b.logs("team-a", "second"))) == [idle.uuid]


def _kill_daemon(home: Path) -> None:
    pid = int((home / "daemon.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not daemon_running(Home.at(home)), what="the daemon to die")


def _live_attempts(home: Path) -> list[str]:
    return sorted(p.name.split(".")[0] for p in (home / "run").glob("*.lock")
                  if lock_held(p))


def test_a_killed_daemon_is_restarted_by_the_next_call_without_losing_or_duplicating_jobs(
        backend: LocalBackend, home: Path, tmp_path: Path) -> None:
    release = tmp_path / "release"
    for name in ("long-a", "long-b"):
        backend.submit(spec(name, "sleep", "600", request=GpuRequest(fraction=0.25)))
    backend.submit(spec("ends-while-down", "sh", "-c", f"while [ ! -e {release} ]; do sleep 0.02; done; exit 5",
                        backoff_limit=0))
    for name in ("long-a", "long-b", "ends-while-down"):
        wait_status(backend, name, "Running")
    pids = {n: wait_for(lambda n=n: backend.store.live_job("team-a", n).pid) for n in ("long-a", "long-b")}
    ids_before = {j.id for j in backend.store.all_jobs()}

    _kill_daemon(home)
    release.touch()
    wait_for(lambda: len(_live_attempts(home)) == 2, what="the released job to end")
    backend.submit(spec("after", "true"))  # restarts the daemon

    wait_status(backend, "ends-while-down", "Failed")
    wait_status(backend, "after", "Succeeded")
    assert backend.get_job("team-a", "ends-while-down").exit_code == 5
    rows = backend.store.all_jobs()
    assert len(rows) == 4 and {r.id for r in rows} - ids_before == {backend.store.live_job("team-a", "after").id}
    for name, pid in pids.items():
        row = backend.store.live_job("team-a", name)
        assert (row.status, row.pid, row.attempts) == ("Running", pid, 1)  # adopted, not restarted
    assert len(_live_attempts(home)) == 2
    assert daemon_status(home).running


def test_an_attempt_recorded_but_never_launched_is_launched_once_after_a_restart(
        backend: LocalBackend, home: Path) -> None:
    backend.submit(spec("victim", "sleep", "600"))
    wait_status(backend, "victim", "Running")
    row = backend.store.live_job("team-a", "victim")
    daemon_stop(home)
    os.killpg(wait_for(lambda: backend.store.live_job("team-a", "victim").pid), signal.SIGKILL)
    # What a daemon killed between recording the start and launching it leaves behind.
    AttemptFiles(Home.at(home), row.id, row.attempts).remove()
    with backend.store.write() as conn:
        backend.store.update_job(conn, row.id, pid=None, started_at=1.0)
    daemon_start(home)
    wait_for(lambda: backend.store.live_job("team-a", "victim").pid is not None
             and _live_attempts(home) == [row.id], what="the job to run again")
    assert backend.store.live_job("team-a", "victim").attempts == 1
    assert "the daemon stopped before the process started" in " ".join(
        e.message for e in backend.get_job("team-a", "victim").events)


def test_only_one_daemon_serves_a_home(home: Path) -> None:
    local_init(home, simulate="T4:1", grace_seconds=1)
    daemon_stop(home)
    threads = [threading.Thread(target=daemon_start, args=(home,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    status = daemon_status(home)
    assert status.running and status.pid is not None and status.simulated == "T4:1"
    assert daemon_stop(home) is True
    assert not daemon_status(home).running
    assert daemon_stop(home) is False
    # none of the racing starters' daemons takes over once the serving one has stopped
    time.sleep(1.0)
    assert not daemon_status(home).running
    assert _daemon_processes(home) == []


def _daemon_processes(home: Path) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"runai_lite.backends.local.daemon" in cmdline and str(home).encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def test_dynamic_mig_refusals(home: Path) -> None:
    backend = make_backend(home, "A100-SXM4-40GB:1:mig-off")
    node = backend.store.config("node")
    with pytest.raises(UserError, match="MIG mode is off"):
        backend.set_dynamic_mig(node, True)
    with pytest.raises(NotFoundError, match="no-such-node"):
        backend.set_dynamic_mig("no-such-node", True)
    backend.delete_jobs("team-a", None)
    local_init(home, simulate="A100-SXM4-40GB:1:mig-on", grace_seconds=1)
    backend.set_dynamic_mig(node, True)
    backend.submit(spec("on-mig", "sleep", "600", request=GpuRequest(mig_profile="1g.5gb")))
    wait_status(backend, "on-mig", "Running")
    with pytest.raises(UserError, match="strand"):
        backend.set_dynamic_mig(node, False)
    backend.delete_jobs("team-a", ["on-mig"])
    backend.set_dynamic_mig(node, False)
    gpu = backend.list_nodes()[0].gpus[0]
    assert not gpu.dynamic_mig and [p.state for p in gpu.mig_instances] == ["idle"]  # kept, as a static partition
    backend.close()


def test_local_init_validates_before_changing_anything(home: Path) -> None:
    with pytest.raises(UserError, match="unknown GPU model"):
        local_init(home, simulate="Z999:1")
    with pytest.raises(UserError, match="unknown enforcement"):
        local_init(home, simulate="T4:1", enforcement="magic")
    backend = make_backend(home, "T4:2")
    backend.submit(spec("busy", "sleep", "600", request=GpuRequest(gpus=1)))
    wait_status(backend, "busy", "Running")
    with pytest.raises(UserError, match="still active"):
        local_init(home, simulate="A100-SXM4-40GB:1")
    assert daemon_status(home).simulated == "T4:2"
    assert [g.model for g in backend.list_nodes()[0].gpus] == ["T4", "T4"]
    backend.close()


def test_the_invariant_checker_reports_a_partition_made_behind_the_stores_back(
        mig_backend: LocalBackend, home: Path) -> None:
    from runai_lite.gpu.simulated import SimulatedDriver

    SimulatedDriver(home).create_mig(0, "1g.5gb", 6)
    broken = home / "invariants.log"
    text = wait_for(lambda: broken.exists() and broken.read_text(), what="the checker to notice")
    assert "1g.5gb at slice 6 exists on the GPU but not in the store (leaked)" in text
    daemon_stop(home)
    broken.unlink()  # seen; the fixture's check is for problems nobody expected


def test_a_preempted_fraction_job_is_requeued_and_its_gpu_is_not_shared_before_it_stops(
        backend: LocalBackend, tmp_path: Path) -> None:
    stubborn = (sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "print('ready', flush=True); time.sleep(600)")
    backend.submit(spec("train-a", *stubborn, request=GpuRequest(fraction=0.5)))
    backend.submit(spec("train-b", *stubborn, request=GpuRequest(fraction=0.5)))
    for name in ("train-a", "train-b"):
        wait_for(lambda name=name: list(backend.logs("team-a", name)) == ["ready"], what=f"{name} to start")
    backend.submit(spec("build", "sleep", "600", request=GpuRequest(fraction=0.5), type=JobType.INTERACTIVE))
    wait_status(backend, "build", "Running")
    victims = [n for n in ("train-a", "train-b") if "Preempted" in _kinds(backend, n)]
    assert len(victims) == 1
    victim = backend.get_job("team-a", victims[0])
    # The victim ignored SIGTERM: the interactive job started only once SIGKILL had ended it.
    assert victim.status.value == "Pending" and victim.allocation is None
    ended = next(e.time for e in victim.events if e.kind == "Requeued")
    started = next(e.time for e in backend.get_job("team-a", "build").events if e.kind == "Started")
    assert started >= ended
    assert any("sent SIGKILL" in e.message for e in victim.events)
    backend.delete_jobs("team-a", ["build"])
    wait_status(backend, victims[0], "Running")
    assert backend.get_job("team-a", victims[0]).attempts == 2


def test_a_mig_mode_switched_on_while_the_daemon_runs_is_noticed(home: Path) -> None:
    from runai_lite.backends.local.daemon.publish import refresh_mig_modes
    from runai_lite.backends.local.daemon.sequencer import Daemon
    from runai_lite.gpu.simulated import SimulatedDriver

    backend = make_backend(home, "A100-SXM4-40GB:1:mig-off")
    node = backend.store.config("node")
    with pytest.raises(UserError, match="MIG mode is off"):
        backend.set_dynamic_mig(node, True)
    daemon_stop(home)
    daemon = Daemon(Home.at(home))  # in this process, to run its refresh without waiting for the tick
    try:
        SimulatedDriver(home).set_mig_mode(0, True)
        refresh_mig_modes(daemon.ctx)
    finally:
        daemon.close()
    backend.set_dynamic_mig(node, True)
    assert backend.list_nodes()[0].gpus[0].dynamic_mig
    backend.close()
