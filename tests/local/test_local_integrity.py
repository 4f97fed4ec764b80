"""What the embedded mode says is true: `delete` waits for the stop and says "still stopping"
(exit 1) when it could not see it; it works on a full disk; a damaged store is named with the way
out, and `runai-adm local repair` rebuilds what can be read and keeps a backup."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmarks.full_disk import fill_until_full, mount_small_tmpfs, unmount
from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.repair import repair_home
from runai_lite.cli.config import CliConfig
from runai_lite.cli.runai import app
from runai_lite.cli.session import CliSession
from runai_lite.errors import OperationalError

from .conftest import kill_everything, make_backend, spec, wait_for, wait_status

pytestmark = pytest.mark.e2e


def _cli(home: Path, program: str, *args: str) -> subprocess.CompletedProcess[str]:
    module = {"runai": "runai_lite.cli.runai", "runai-adm": "runai_lite.cli.runai_adm"}[program]
    return subprocess.run([sys.executable, "-m", module, *args], env={**os.environ, "RUNAI_LITE_HOME": str(home)},
                          capture_output=True, text=True, timeout=60)


def _alive(pid: int) -> bool:
    """A live process (a zombie has ended: only its parent has not collected it yet)."""
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


def _daemon_pid(home: Path) -> int:
    return int(Home.at(home).daemon_pid.read_text().split()[0])


def test_delete_with_a_stopped_daemon_says_still_stopping_and_exits_1(backend: LocalBackend, home: Path) -> None:
    backend.submit(spec("run2", "sleep", "600"))
    wait_status(backend, "run2", "Running")
    job_pid = wait_for(lambda: backend.store.live_job("team-a", "run2").pid, what="the job's pid")
    daemon = _daemon_pid(home)
    os.kill(daemon, signal.SIGSTOP)
    try:
        result = CliRunner().invoke(app, ["delete", "job", "run2"],
                                    obj=CliSession(backend=backend, config=CliConfig(project="team-a")))
        assert result.exit_code == 1, result.output
        assert "run2 in project team-a are still stopping" in result.output
        assert "has been deleted" not in result.output
        assert _alive(job_pid)  # the job really is still there
    finally:
        os.kill(daemon, signal.SIGCONT)
    assert backend.delete_jobs("team-a", ["run2"]) == ["run2"]  # once the daemon acts, delete completes
    wait_for(lambda: not _alive(job_pid), what="the job's supervisor to exit")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a small tmpfs for the home")
def test_delete_stops_a_job_when_the_homes_disk_is_full(tmp_path: Path) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    assert mount_small_tmpfs(mount, "12m"), "cannot mount a tmpfs for the home"
    home = mount / "home"
    try:
        backend = make_backend(home)
        backend.submit(spec("runaway", "sleep", "600"))
        wait_status(backend, "runaway", "Running")
        pid = wait_for(lambda: backend.store.live_job("team-a", "runaway").pid, what="the job's pid")
        job = backend.store.live_job("team-a", "runaway")
        fill_until_full(mount / "filler")  # what a job writing without end would do
        assert os.statvfs(mount).f_bavail == 0
        assert backend.delete_jobs("team-a", ["runaway"]) == ["runaway"]
        assert backend.store.job(job.id).status == "Deleted"
        wait_for(lambda: not _alive(pid), what="the job's supervisor to exit")
        backend.close()
    finally:
        kill_everything(home)
        unmount(mount)


def _damage(home: Path, keep_bytes: int) -> None:
    db = Home.at(home).db
    with open(db, "r+b") as handle:
        handle.truncate(keep_bytes)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


def test_a_truncated_store_is_named_with_the_repair_command_and_repair_rebuilds_it(home: Path) -> None:
    backend = make_backend(home)
    for i in range(40):
        backend.submit(spec(f"done-{i}", "true"))
    wait_status(backend, "done-39", "Succeeded", timeout=60)
    backend.close()
    assert _cli(home, "runai-adm", "local", "stop").returncode == 0
    size = Home.at(home).db.stat().st_size
    _damage(home, size - 4 * 4096)
    for args in (("runai", "list", "-A"), ("runai-adm", "local", "status")):
        done = _cli(home, *args)
        assert done.returncode == 1, done
        assert f"the state database {Home.at(home).db} is damaged" in done.stderr, done.stderr
        assert "runai-adm local repair" in done.stderr and "Traceback" not in done.stderr
    report = repair_home(home)
    assert report.backup.exists() and report.backup.stat().st_size == size - 4 * 4096
    assert report.recovered["config"] > 0 and report.recovered["projects"] == 1
    assert 0 < report.recovered["jobs"] <= 40
    listed = _cli(home, "runai", "list", "-A", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert _cli(home, "runai", "submit", "after", "-p", "team-a", "-i", "img", "--", "true").returncode == 0


def test_repair_of_a_file_that_is_no_database_keeps_it_and_starts_afresh(home: Path) -> None:
    make_backend(home).close()
    assert _cli(home, "runai-adm", "local", "stop").returncode == 0
    db = Home.at(home).db
    db.write_bytes(uuid.uuid4().bytes * 1000)
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    with pytest.raises(OperationalError, match="is damaged"):
        LocalBackend(home).list_projects()
    listed = _cli(home, "runai", "list", "-A")  # read without the store: the same message and way out
    assert listed.returncode == 1 and "is damaged" in listed.stderr and "runai-adm local repair" in listed.stderr
    done = _cli(home, "runai-adm", "local", "repair")
    assert done.returncode == 0, done.stderr
    assert "config: 0 row(s) recovered" in done.stdout and "run `runai-adm local init` again" in done.stdout
    assert len(list(db.parent.glob("state.db.damaged-*"))) == 1
    assert _cli(home, "runai", "list", "-A").returncode == 0
