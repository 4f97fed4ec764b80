"""Jobs as real processes under a real daemon on a simulated A100: environment, exit codes,
retries, exec, logs, delete."""

from __future__ import annotations

import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.errors import NotFoundError, UserError
from runai_lite.model import GpuRequest, JobType

from .conftest import spec, status_of, wait_for, wait_status

pytestmark = pytest.mark.e2e


def _log(backend: LocalBackend, name: str) -> list[str]:
    return list(backend.logs("team-a", name))


def _env_of(lines: list[str]) -> dict[str, str]:
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_fraction_job_sees_its_gpu_and_its_environment(backend: LocalBackend, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    backend.submit(spec("frac", "sh", "-c", "env; echo CWD=$(pwd)", request=GpuRequest(fraction=0.5),
                        env=(("MY_VAR", "hello world"), ("NVIDIA_VISIBLE_DEVICES", "all")),
                        working_dir=str(workdir)))
    wait_status(backend, "frac", "Succeeded")
    job = backend.get_job("team-a", "frac")
    gpu_uuid = backend.list_nodes()[0].gpus[0].uuid
    env = _env_of(_log(backend, "frac"))
    assert env["NVIDIA_VISIBLE_DEVICES"] == env["CUDA_VISIBLE_DEVICES"] == gpu_uuid  # the job cannot override it
    assert env["RUNAI_NUM_OF_GPUS"] == "0.5"
    assert env["GPU_PORTION"] == "0.5"
    assert env["RUNAI_GPU_MEMORY_LIMIT"] == "0.500"
    assert env["RUNAI_JOB_NAME"] == "frac" and env["RUNAI_PROJECT"] == "team-a"
    assert env["MY_VAR"] == "hello world"
    assert env["CWD"] == str(workdir)
    assert job.enforcement == "framework" and job.memory_limit_mib == 40536 // 2
    kinds = [e.kind for e in job.events]
    assert kinds[:3] == ["Submitted", "ImageNotUsed", "Bound"] and "Started" in kinds and kinds[-1] == "Exited"


def test_exit_codes_map_to_statuses_and_failed_training_jobs_are_retried(backend: LocalBackend) -> None:
    backend.submit(spec("ok", "true"))
    backend.submit(spec("bad", "sh", "-c", "exit 3", backoff_limit=2))
    backend.submit(spec("bad-int", "sh", "-c", "exit 4", type=JobType.INTERACTIVE))
    wait_status(backend, "ok", "Succeeded")
    wait_status(backend, "bad", "Failed")
    wait_status(backend, "bad-int", "Failed")
    bad = backend.get_job("team-a", "bad")
    assert bad.exit_code == 3 and bad.attempts == 3
    assert [e.kind for e in bad.events].count("Retrying") == 2
    interactive = backend.get_job("team-a", "bad-int")
    assert interactive.exit_code == 4 and interactive.attempts == 1  # interactive jobs are not retried
    assert backend.get_job("team-a", "ok").exit_code == 0


def test_a_retried_job_that_then_succeeds_is_succeeded(backend: LocalBackend, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    backend.submit(spec("flaky", sys.executable, "-c",
                        f"import os,sys; p={str(marker)!r}; "
                        "sys.exit(0) if os.path.exists(p) else (open(p,'w').close(), sys.exit(1))",
                        backoff_limit=3))
    wait_status(backend, "flaky", "Succeeded")
    assert backend.get_job("team-a", "flaky").attempts == 2


def test_exec_runs_in_the_jobs_environment_and_working_dir(backend: LocalBackend, tmp_path: Path) -> None:
    out = tmp_path / "exec.out"
    backend.submit(spec("sleeper", "sleep", "600", request=GpuRequest(fraction=0.25), working_dir=str(tmp_path)))
    wait_status(backend, "sleeper", "Running")
    code = backend.exec("team-a", "sleeper",
                        ["sh", "-c", f"echo $CUDA_VISIBLE_DEVICES $RUNAI_JOB_NAME $(pwd) > {out}; exit 7"])
    assert code == 7
    device, name, cwd = out.read_text().split()
    assert device == backend.list_nodes()[0].gpus[0].uuid and name == "sleeper" and cwd == str(tmp_path)
    with pytest.raises(UserError, match="not found"):
        backend.exec("team-a", "sleeper", ["no-such-program-xyz"])
    backend.submit(spec("done", "true"))
    wait_status(backend, "done", "Succeeded")
    with pytest.raises(UserError, match="not Running"):
        backend.exec("team-a", "done", ["true"])


def test_logs_tail_and_follow(backend: LocalBackend) -> None:
    backend.submit(spec("printer", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; sleep 0.05; done"))
    assert list(backend.logs("team-a", "printer", follow=True)) == [f"line{i}" for i in range(1, 6)]
    assert list(backend.logs("team-a", "printer", tail=2)) == ["line4", "line5"]
    log = backend.home.job_log(backend.store.live_job("team-a", "printer").id)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_delete_stops_the_process_group_and_frees_the_name(backend: LocalBackend, tmp_path: Path) -> None:
    trap = tmp_path / "trapped"
    backend.submit(spec("one", "sh", "-c",
                        f"trap 'touch {trap}; exit 0' TERM; echo ready; while true; do sleep 0.05; done"))
    backend.submit(spec("two", "sleep", "600", request=GpuRequest(gpus=1)))
    backend.submit(spec("three", "sleep", "600", request=GpuRequest(gpus=1)))  # two holds the GPU: stays Pending
    wait_for(lambda: _log(backend, "one") == ["ready"], what="the trap to be set")
    wait_status(backend, "two", "Running")
    pid = wait_for(lambda: backend.store.live_job("team-a", "two").pid, what="the pid of two")
    assert backend.delete_jobs("team-a", ["one"]) == ["one"]
    assert trap.exists()  # it got SIGTERM and ran its handler
    assert sorted(backend.delete_jobs("team-a", None)) == ["three", "two"]
    assert backend.list_jobs("team-a") == []
    wait_for(lambda: not _group_alive(pid), timeout=5, what="the process group to be gone")
    with pytest.raises(NotFoundError):
        backend.delete_jobs("team-a", ["one"])
    backend.submit(spec("one", "true"))  # the name is free again
    wait_status(backend, "one", "Succeeded")


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(backend: LocalBackend) -> None:
    backend.submit(spec("stubborn", sys.executable, "-c",
                        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                        "time.sleep(600)"))
    wait_for(lambda: _log(backend, "stubborn") == ["ready"], what="the job to ignore SIGTERM")
    backend.delete_jobs("team-a", ["stubborn"])
    assert backend.list_jobs("team-a") == []
    row = next(r for r in backend.store.all_jobs() if r.name == "stubborn")
    assert row.status == "Deleted" and row.exit_code == 128 + signal.SIGKILL
    assert any("sent SIGKILL" in e.message for e in backend.store.events(row.id))


def test_submit_refuses_what_cannot_run(backend: LocalBackend) -> None:
    with pytest.raises(UserError, match="nothing to run"):
        backend.submit(spec("nocmd"))
    with pytest.raises(NotFoundError, match="project team-z"):
        backend.submit(spec("x", "true", project="team-z"))
    with pytest.raises(UserError, match="not a directory"):
        backend.submit(spec("x", "true", working_dir="/no/such/dir"))
    with pytest.raises(UserError, match="more GPUs than any node has"):
        backend.submit(spec("x", "true", request=GpuRequest(gpus=2)))
    backend.submit(spec("dup", "sleep", "600"))
    with pytest.raises(UserError, match="already exists"):
        backend.submit(spec("dup", "true"))
    assert [j.name for j in backend.list_jobs(None)] == ["dup"]


def test_projects_report_usage_and_refuse_deletion_while_jobs_are_active(backend: LocalBackend) -> None:
    with pytest.raises(UserError, match="already exists"):
        backend.create_project("team-a", 1)
    with pytest.raises(UserError, match="invalid project name"):
        backend.create_project("Team_A", 1)
    backend.create_project("team-b", 0.5)
    backend.submit(spec("half", "sleep", "600", request=GpuRequest(fraction=0.5)))
    backend.submit(spec("whole", "sleep", "600", request=GpuRequest(gpus=1)))
    wait_status(backend, "half", "Running")
    team_a = {p.name: p for p in backend.list_projects()}["team-a"]
    assert (team_a.allocated_gpus, team_a.running, team_a.pending) == (0.5, 1, 1)
    assert backend.get_job("team-a", "whole").pending_reason
    with pytest.raises(UserError, match="active job"):
        backend.delete_project("team-a")
    backend.delete_project("team-b")
    assert [p.name for p in backend.list_projects()] == ["team-a"]
    assert status_of(backend, "half") == "Running"


def test_a_job_that_runs_out_of_gpu_memory_fails_with_its_limit_named(backend: LocalBackend) -> None:
    backend.submit(spec("greedy", "sh", "-c", "echo 'RuntimeError: CUDA out of memory. Tried to allocate 2 GiB'; exit 1",
                        request=GpuRequest(memory_bytes=4 * 10**9), backoff_limit=0))
    wait_status(backend, "greedy", "Failed")
    job = backend.get_job("team-a", "greedy")
    exited = [e.message for e in job.events if e.kind == "Exited"]
    assert exited == [f"exit code 1: out of GPU memory: the job is limited to {job.memory_limit_mib} MiB "
                      "(framework enforcement)"]
    assert job.memory_limit_mib == 3815  # 4GB = 3815 MiB, rounded up
