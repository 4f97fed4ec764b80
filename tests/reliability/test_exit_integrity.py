"""An exit status is never lost or invented (issue 10, Deliver 6): a supervisor (shim) SIGKILLed
while its job goes on does not make the job run twice or fail with a made-up 137, the daemon
(the shims' child subreaper) records the job's real end; and an exit file that cannot be written
because the home's disk is full is written when space returns, the job settled once, truthfully,
with an event saying what happened."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from benchmarks.full_disk import fill_until_full, mount_small_tmpfs, unmount
from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.tracking.files import AttemptFiles
from tests.local.conftest import home, make_backend, spec, wait_for, wait_status  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


def _gated(gate: Path, code: int) -> tuple[str, ...]:
    return ("sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done; echo finished; exit {code}")


def _events(backend: LocalBackend, name: str) -> list[tuple[str, str]]:
    return [(e.kind, e.message) for e in backend.get_job("team-a", name).events]


@pytest.mark.parametrize("code, status", [(0, "Succeeded"), (7, "Failed")])
def test_a_killed_shim_whose_job_goes_on_is_settled_with_the_jobs_own_exit(home: Path, tmp_path: Path, code: int,
                                                                           status: str) -> None:
    backend = make_backend(home, "T4:1")
    gate = tmp_path / "go"
    backend.submit(spec("steady", *_gated(gate, code), backoff_limit=0))
    wait_status(backend, "steady", "Running")
    files = AttemptFiles(Home.at(home), backend.store.live_job("team-a", "steady").id, 1)
    shim = wait_for(files.pid, what="the shim's pid")
    wait_for(files.child_pid, what="the job's pid")
    os.kill(shim, signal.SIGKILL)
    gate.touch()
    wait_status(backend, "steady", status)
    job = backend.get_job("team-a", "steady")
    assert job.exit_code == code and job.attempts == 1  # its own code, and run once
    assert list(backend.logs("team-a", "steady")) == ["finished"]
    recorded = [m for k, m in _events(backend, "steady") if k == "ExitRecordedLate"]
    assert recorded == [f"its supervisor was killed while the job went on; the daemon waited for the job itself "
                        f"(exit code {code})"]
    backend.close()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root")
def test_an_exit_written_when_the_full_disk_has_room_again_settles_the_job_once(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from runai_lite.backends.local.checks import CHECK_ENV

    monkeypatch.setenv(CHECK_ENV, "1")
    mount = tmp_path / "small"
    mount.mkdir()
    if not mount_small_tmpfs(mount, "8m"):
        pytest.skip("cannot mount a tmpfs here")
    home = mount / "home"
    gate = tmp_path / "go"
    try:
        backend = make_backend(home, "T4:1")
        backend.submit(spec("patient", *_gated(gate, 0)))
        wait_status(backend, "patient", "Running")
        files = AttemptFiles(Home.at(home), backend.store.live_job("team-a", "patient").id, 1)
        wait_for(files.child_pid, what="the job to start")
        filler = mount / "filler"
        fill_until_full(filler)
        gate.touch()
        shim = files.pid()
        wait_for(lambda: Path(f"{files.exitfile}.{shim}.tmp").exists(), what="the shim to fail to write the exit")
        assert files.exit_code() is None  # nowhere to write it yet
        assert backend.get_job("team-a", "patient").status.value == "Running"  # not settled on a guess
        filler.unlink()
        wait_status(backend, "patient", "Succeeded")
        job = backend.get_job("team-a", "patient")
        assert job.exit_code == 0 and job.attempts == 1
        late = [m for k, m in _events(backend, "patient") if k == "ExitRecordedLate"]
        assert len(late) == 1 and "the disk was full" in late[0], _events(backend, "patient")
        backend.close()
    finally:
        from tests.local.conftest import kill_everything

        kill_everything(home)
        unmount(mount)
