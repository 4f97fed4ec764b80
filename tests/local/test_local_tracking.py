"""Process tracking end to end (real daemon, store and processes): what a job leaves behind dies
with it, and its GPU or MIG partition goes to another job only once every process that held it is
gone; a job runs as its submitter. The home's daemon checks the consistency invariants after every
cycle (a live process of a job holding a GPU it no longer has would fail the test)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_status
from runai_lite.backends.local.identity import Caller
from runai_lite.backends.local.service import LocalService, SubmitContext
from runai_lite.model import GpuRequest, JobType

from tests.tracking.conftest import pid_alive as _pid_alive

from .conftest import spec, wait_for, wait_status

pytestmark = pytest.mark.e2e


def _leaves_a_grandchild(pidfile: Path, then: str = "exit 0", trap: str = "") -> tuple[str, ...]:
    """A job whose grandchild leaves its process group (`setsid`), writes its pid, and runs on."""
    inner = f"{trap} echo $$ > {pidfile}; while :; do sleep 0.05; done"
    return ("sh", "-c", f"setsid sh -c '{inner}' & while [ ! -s {pidfile} ]; do sleep 0.01; done; {then}")


def _event_time(backend: LocalBackend, name: str, kind: str, text: str = "") -> float:
    events = backend.get_job("team-a", name).events
    found = [e.time for e in events if e.kind == kind and text in e.message]
    assert found, f"{name} has no {kind} event{f' mentioning {text!r}' if text else ''}: " + "; ".join(
        f"{e.kind}: {e.message}" for e in events)
    return found[0]


def test_a_setsid_grandchild_dies_with_its_job_and_the_next_job_gets_the_gpu_only_then(
        backend: LocalBackend, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    backend.submit(spec("orphan", *_leaves_a_grandchild(pidfile), request=GpuRequest(gpus=1)))
    wait_status(backend, "orphan", "Running")
    backend.submit(spec("next", "sh", "-c", "echo $NVIDIA_VISIBLE_DEVICES", request=GpuRequest(gpus=1)))
    wait_status(backend, "orphan", "Succeeded")
    grandchild = int(pidfile.read_text())
    assert not _pid_alive(grandchild)  # killed before the job was called finished
    wait_status(backend, "next", "Succeeded")
    killed = _event_time(backend, "orphan", "Warning", f"pid {grandchild}")
    assert _event_time(backend, "next", "Started") >= killed
    assert backend.get_job("team-a", "orphan").exit_code == 0  # its main process's status, not the kill's


def test_delete_kills_every_process_of_the_job(backend: LocalBackend, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    backend.submit(spec("stubborn", *_leaves_a_grandchild(pidfile, then="sleep 600", trap="trap '' TERM;")))
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the grandchild")
    grandchild = int(pidfile.read_text())
    backend.delete_jobs("team-a", ["stubborn"])
    wait_for(lambda: backend.store.live_job("team-a", "stubborn") is None, what="the job to be deleted")
    assert not _pid_alive(grandchild)


def test_a_preempted_mig_jobs_grandchild_is_gone_before_the_partition_is_handed_over(
        mig_backend: LocalBackend, tmp_path: Path) -> None:
    b = mig_backend
    pidfile = tmp_path / "grandchild"
    b.submit(spec("train", *_leaves_a_grandchild(pidfile, then="sleep 600", trap="trap '' TERM;"),
                  request=GpuRequest(mig_profile="7g.40gb")))
    wait_status(b, "train", "Running")
    wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(), what="the grandchild")
    grandchild = int(pidfile.read_text())
    b.submit(spec("interactive", "sleep", "600", request=GpuRequest(mig_profile="7g.40gb"), type=JobType.INTERACTIVE))
    wait_status(b, "interactive", "Running", timeout=30)
    assert not _pid_alive(grandchild)
    assert _event_time(b, "interactive", "Started") >= _event_time(b, "train", "Requeued")


def test_the_daemon_says_how_it_tracks_processes(backend: LocalBackend) -> None:
    backend.submit(spec("one", "true"))
    wait_status(backend, "one", "Succeeded")
    status = daemon_status(backend.home.root)
    assert status.process_tracking in ("cgroup-v2", "cgroup-v1", "process-tree")
    assert status.process_tracking_reason and status.device_confinement
    confinement = [e.message for e in backend.get_job("team-a", "one").events if e.kind == "DeviceConfinement"]
    assert len(confinement) == 1 and confinement[0].split(":")[0] in ("enforced", "not enforced", "not applicable")


PYTHON = "/usr/bin/python3.11"
REPORT = ("import json, os; m = os.umask(0); print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), "
          "'groups': sorted(os.getgroups()), 'umask': m, 'cwd': os.getcwd(), "
          "'mine': os.environ.get('ONLY_IN_MY_SHELL'), 'gpu': os.environ.get('NVIDIA_VISIBLE_DEVICES')}))")


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists(PYTHON) or shutil.which("useradd") is None,
                    reason="needs root, useradd and /usr/bin/python3.11 to run a job as another user")
def test_a_job_runs_as_its_submitter_with_their_directory_environment_and_log(
        backend: LocalBackend) -> None:
    import grp
    import pwd

    name = f"rl{uuid.uuid4().hex[:8]}"
    subprocess.run(["groupadd", f"{name}x"], check=True)
    subprocess.run(["useradd", "--no-create-home", "--groups", f"{name}x", name], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="runai-lite-submit-"))
    try:
        entry, extra = pwd.getpwnam(name), grp.getgrnam(f"{name}x").gr_gid
        workdir.chmod(0o700)
        os.chown(workdir, entry.pw_uid, entry.pw_gid)
        # What the system mode's server does for alice's connection: her account from the kernel,
        # her shell's directory, umask and environment from her client.
        alice = Caller(uid=entry.pw_uid, gid=entry.pw_gid, groups=(entry.pw_gid, extra), user=name)
        service = LocalService(backend.home, backend.store, lambda: alice)
        context = SubmitContext(cwd=str(workdir), umask=0o027,
                                env={"PATH": "/usr/bin:/bin", "ONLY_IN_MY_SHELL": "alice's"})
        service.submit(spec("as-alice", PYTHON, "-c", REPORT, request=GpuRequest(gpus=1)), context)
        wait_status(backend, "as-alice", "Succeeded", "Failed")
        lines = list(backend.logs("team-a", "as-alice"))
        seen = json.loads(lines[-1])
        gpu = backend.get_job("team-a", "as-alice").allocation
        assert seen == {"uid": entry.pw_uid, "gid": entry.pw_gid, "groups": sorted({entry.pw_gid, extra}),
                        "umask": 0o027, "cwd": str(workdir), "mine": "alice's", "gpu": seen["gpu"]}
        assert seen["gpu"].startswith("GPU-") and gpu is None  # the daemon's variable, released after
        log = backend.home.job_log(backend.store.live_job("team-a", "as-alice").id)
        assert (log.stat().st_uid, log.stat().st_mode & 0o777) == (entry.pw_uid, 0o600)
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", f"{name}x"], check=False)
        shutil.rmtree(workdir, ignore_errors=True)


ESCAPES_TRACKING = ("import subprocess, sys; subprocess.Popen([sys.executable, '-c', "
                    "'import os, time; os.setsid(); open(sys.argv[1], \"w\").write(str(os.getpid())); time.sleep(600)'"
                    ".replace('sys.argv[1]', repr(sys.argv[1]))], close_fds=True); "
                    "import time, os; [time.sleep(0.01) for _ in range(1000) if not os.path.exists(sys.argv[1])]")


def test_the_daemons_audit_kills_a_process_that_escaped_the_process_tree(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On the process-tree fallback a grandchild that leaves the group and closes the attempt's
    lock escapes tracking; the daemon's own audit finds it by its RUNAI_JOB_UUID and kills it."""
    from runai_lite.backends.local import daemon_start, daemon_stop

    from .conftest import kill_everything, make_backend

    monkeypatch.setenv("RUNAI_LITE_TRACKING", "process-tree")
    home = tmp_path / "home"
    backend = make_backend(home, "A100-SXM4-40GB:1:mig-off")
    try:
        daemon_stop(home)
        with backend.store.write() as conn:
            backend.store.set_config(conn, "consistency_seconds", 0.5)
        daemon_start(home)
        assert daemon_status(home).process_tracking == "process-tree"
        pidfile = tmp_path / "escaped"
        backend.submit(spec("escapee", sys.executable, "-c", ESCAPES_TRACKING, str(pidfile)))
        wait_status(backend, "escapee", "Succeeded")  # the tree saw nothing left
        escaped = int(wait_for(lambda: pidfile.exists() and pidfile.read_text()))
        wait_for(lambda: any(e.kind == "ProcessKilled" and f"process {escaped} " in e.message
                             for e in backend.get_job("team-a", "escapee").events), what="the audit's event")
        wait_for(lambda: not _pid_alive(escaped), what="the escaped process to die")
    finally:
        backend.close()
        kill_everything(home)
