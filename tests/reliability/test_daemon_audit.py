"""The daemon audits itself outside tests too (issue 10, Deliver 3 and 6): at its cadence it runs
the consistency check and acts on what it finds. A process of a finished job that escaped its
supervisor (it carries the job's `RUNAI_JOB_UUID`, as a `setsid` grandchild does) is killed, and
the job's history says so."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_stop, local_init
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.backends.local.store import Store
from tests.local.conftest import GRACE_SECONDS, home, spec, wait_for, wait_status  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("every_cycle", [True, False], ids=["tests' every-cycle check", "cadence outside tests"])
def test_a_process_of_a_finished_job_is_killed_and_recorded(home: Path, monkeypatch: pytest.MonkeyPatch,
                                                            every_cycle: bool) -> None:
    if not every_cycle:
        monkeypatch.delenv(CHECK_ENV)
    local_init(home, simulate="T4:1", enforcement="auto", grace_seconds=GRACE_SECONDS)
    store = Store(home / "state.db")
    with store.write() as conn:
        store.set_config(conn, "consistency_seconds", 0.5)
    store.close()
    daemon_stop(home)
    backend = LocalBackend(home)
    backend.create_project("team-a", 2)
    backend.submit(spec("done", "true", request=None))
    wait_status(backend, "done", "Succeeded")
    job_id = backend.store.live_job("team-a", "done").id
    escaped = subprocess.Popen(["sleep", "600"], env={**os.environ, "RUNAI_JOB_UUID": job_id},
                               start_new_session=True)
    try:
        killed = wait_for(lambda: [e.message for e in backend.get_job("team-a", "done").events
                                   if e.kind == "ProcessKilled"], what="the daemon to kill the escaped process")
        assert killed == [f"process {escaped.pid} of this job (Succeeded) was still running; killed"]
        wait_for(lambda: escaped.poll() is not None, what="the escaped process to end")
    finally:
        if escaped.poll() is None:
            escaped.kill()
        escaped.wait()
    broken = home / "invariants.log"
    if every_cycle:  # what it found is on record too
        assert "but its processes still run" in broken.read_text()
    daemon_stop(home)
    broken.unlink(missing_ok=True)
    backend.close()
