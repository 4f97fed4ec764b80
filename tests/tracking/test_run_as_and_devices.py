"""A job runs as its submitter (account, groups, umask, directory, environment), and where the
kernel offers the v1 `devices` controller, it can open only its own GPUs' device nodes. Both need
root; skipped with the reason otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runai_lite.backends.local.tracking.choice import open_confiner, probe_machine
from runai_lite.backends.local.tracking.files import AttemptFiles
from runai_lite.backends.local.tracking.devices import Confinement, JobDevices, read_nvidia_nodes
from runai_lite.backends.local.tracking.protocol import Phase, RunAs

from .conftest import Launcher, wait_for

ROOT = os.geteuid() == 0
PYTHON = "/usr/bin/python3.11"  # what another account can run (the venv lives under /root)
pytestmark = pytest.mark.skipif(not ROOT, reason="switching accounts and device cgroups need root")


@pytest.fixture
def account() -> Iterator[tuple[str, int, int, int]]:
    """A real user created for the test (name, uid, gid, an extra group's gid), removed after."""
    if shutil.which("useradd") is None or not os.path.exists(PYTHON):
        pytest.skip("needs useradd and /usr/bin/python3.11")
    name = f"rl{uuid.uuid4().hex[:8]}"
    subprocess.run(["groupadd", f"{name}x"], check=True)
    subprocess.run(["useradd", "--no-create-home", "--groups", f"{name}x", name], check=True)
    import grp
    import pwd

    entry = pwd.getpwnam(name)
    try:
        yield name, entry.pw_uid, entry.pw_gid, grp.getgrnam(f"{name}x").gr_gid
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", f"{name}x"], check=False)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory other accounts can reach (pytest's own tmp is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="runai-lite-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


REPORT = ("import json, os; m = os.umask(0); print(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), "
          "'gid': os.getgid(), 'groups': sorted(os.getgroups()), 'umask': m, 'cwd': os.getcwd(), "
          "'only_mine': os.environ.get('ONLY_IN_MY_SHELL'), 'path': os.environ.get('PATH')}))")


def test_a_job_runs_with_its_submitters_account_groups_umask_directory_and_environment(
        launcher: Launcher, account, open_dir: Path) -> None:
    name, uid, gid, extra = account
    workdir = open_dir / "alice-work"
    workdir.mkdir(mode=0o700)
    os.chown(workdir, uid, gid)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "ONLY_IN_MY_SHELL": "42", "HOME": str(workdir)}
    files = launcher.start(PYTHON, "-c", REPORT, env=env, cwd=str(workdir),
                           run_as=RunAs(uid=uid, gid=gid, groups=(gid, extra), umask=0o027))
    final = wait_for(lambda: (s := launcher.tracker.status(files)).phase is Phase.EXITED and s, what="exited")
    assert final.code == 0, launcher.log(files)
    seen = json.loads(launcher.log(files).strip().splitlines()[-1])
    assert seen == {"uid": uid, "euid": uid, "gid": gid, "groups": sorted({gid, extra}), "umask": 0o027,
                    "cwd": str(workdir), "only_mine": "42", "path": "/usr/local/bin:/usr/bin:/bin"}


def test_a_directory_the_submitter_may_not_enter_is_refused_not_entered_by_root(
        launcher: Launcher, account, open_dir: Path) -> None:
    _, uid, gid, _ = account
    secret = open_dir / "root-only"
    secret.mkdir(mode=0o700)
    files = launcher.start(PYTHON, "-c", "print('ran')", env={"PATH": "/usr/bin:/bin"}, cwd=str(secret),
                           run_as=RunAs(uid=uid, gid=gid))
    final = wait_for(lambda: (s := launcher.tracker.status(files)).phase is Phase.EXITED and s, what="exited")
    assert final.code == 127 and "ran" not in launcher.log(files)
    assert f"cannot enter {secret}: Permission denied" in launcher.log(files)


OPEN_BOTH = ("import errno, os, sys\n"
             "for name in sys.argv[1:]:\n"
             "    try:\n"
             "        os.close(os.open(name, os.O_RDWR))\n"
             "        print(name, 'opened')\n"
             "    except OSError as e:\n"
             "        print(name, errno.errorcode[e.errno])\n")


def test_device_confinement_lets_a_job_open_only_its_own_gpu_nodes(launcher: Launcher, instance: str,
                                                                   tmp_path: Path) -> None:
    probe = probe_machine(instance)
    if not probe.v1.get("devices") or not probe.v1["devices"].usable:
        pytest.skip("no writable cgroup v1 devices hierarchy")
    dev = tmp_path / "dev"
    dev.mkdir()
    for index in range(3):  # NVIDIA's major; no driver here, so an allowed open fails with ENXIO
        os.mknod(dev / f"nvidia{index}", 0o666 | 0o020000, os.makedev(195, index))
    confiner = open_confiner(probe, instance)
    confiner = type(confiner)(read_nvidia_nodes(dev, tmp_path / "no-mig-minors"), confiner.mount, instance)
    assert confiner.summary[0] is Confinement.ENFORCED
    files = AttemptFiles(launcher.home, "job", 1)  # the attempt decides its devices cgroup's name
    join, state, note = confiner.prepare(files, JobDevices(gpus=(1,)))
    assert state is Confinement.ENFORCED and "/dev/nvidia1" in note
    launcher.start(PYTHON, "-c", OPEN_BOTH, *(str(dev / f"nvidia{i}") for i in range(3)), number=1, join=join)
    wait_for(lambda: launcher.tracker.status(files).phase is Phase.EXITED, what="exited")
    lines = sorted(launcher.log(files).split("\n"))
    assert [line.split()[-1] for line in lines if line] == ["EPERM", "ENXIO", "EPERM"]
    launcher.close()
    confiner.cleanup(files)
    assert not confiner.directory(files).exists()
