"""A machine-wide daemon under a temporary `RUNAI_LITE_SYSTEM_DIR`, and real unix users made for
the test (`useradd -m`, removed afterwards) who run the real `runai` as themselves.

Other users cannot enter /root, so they run `/usr/bin/python3.11` (the venv's ABI) with this tree and
the venv's site-packages on PYTHONPATH; the system directory is made under /tmp with mode 0755 so
that they can reach the socket. Everything here needs root: the tests are skipped, with the reason,
otherwise."""

from __future__ import annotations

import itertools
import json
import os
import pwd
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.control import local_init
from runai_lite.backends.local.paths import HOME_ENV, SYSTEM_DIR_ENV, system_dirs

from ..local.conftest import kill_everything, wait_for as _wait_for

REPO = Path(__file__).resolve().parents[2]
USER_PYTHON = "/usr/bin/python3.11"
WAIT_SECONDS = 30.0  # a bound on waiting for the daemon, not a performance expectation
_names = itertools.count()


def root_skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root: it starts the machine-wide daemon and creates unix users"
    if shutil.which("useradd") is None:
        return "needs useradd to create the test's unix users"
    if not os.access(USER_PYTHON, os.X_OK):
        return f"needs {USER_PYTHON} (the interpreter other users run runai with)"
    return None


needs_root = pytest.mark.skipif(root_skip_reason() is not None, reason=root_skip_reason() or "")


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = WAIT_SECONDS) -> Any:
    return _wait_for(predicate, timeout, what)


@dataclass(frozen=True)
class User:
    """A unix user made for the test, who runs `runai` and `runai-adm` as themselves."""

    name: str
    uid: int
    gid: int
    home: Path
    system_dir: Path

    def run(self, program: str, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
        module = {"runai": "runai_lite.cli.runai", "runai-adm": "runai_lite.cli.runai_adm"}[program]
        site = sysconfig.get_paths()["purelib"]
        environment = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.home), "USER": self.name,
                       "LOGNAME": self.name, "PYTHONPATH": f"{REPO}{os.pathsep}{site}",
                       SYSTEM_DIR_ENV: str(self.system_dir), **(env or {})}
        done = subprocess.run([USER_PYTHON, "-m", module, *args], env=environment, cwd=cwd or self.home,
                              user=self.uid, group=self.gid, extra_groups=[], capture_output=True, text=True,
                              timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name}: {program} {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def runai(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.run("runai", *args, **kwargs)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in json.loads(self.runai("list", "-A", "-o", "json", check=True).stdout)}


@pytest.fixture
def system_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary system directory every user can reach; torn down with its daemon and jobs."""
    if root_skip_reason():
        pytest.skip(root_skip_reason())
    base = Path(tempfile.mkdtemp(prefix="runai-lite-system-", dir="/tmp"))
    base.chmod(0o755)
    monkeypatch.setenv(SYSTEM_DIR_ENV, str(base))
    monkeypatch.delenv(HOME_ENV, raising=False)
    yield base
    _stop_everything(system_dirs().state)
    shutil.rmtree(base, ignore_errors=True)


def _stop_everything(state: Path) -> None:
    """Stop the daemon, then kill every job process it knew of (the system state is a home)."""
    if state.exists():
        kill_everything(state)


@pytest.fixture
def system_daemon(system_dir: Path) -> Iterator[LocalBackend]:
    """The machine-wide daemon on two simulated T4s, with project team-a (deserved 2 GPUs); the
    backend root's own `runai` uses (through the socket)."""
    local_init(simulate="T4:2", grace_seconds=1.0, system=True)
    backend = LocalBackend()
    assert backend.system
    backend.create_project("team-a", 2)
    yield backend
    backend.close()


@pytest.fixture
def make_user(system_dir: Path) -> Iterator[Callable[[str], User]]:
    """Creates unix users with unique names (`useradd -m`); removes them and their homes after."""
    made: list[str] = []

    def make(role: str) -> User:
        name = f"rl{role[:6]}{os.getpid() % 100000}{next(_names)}"
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
        made.append(name)
        entry = pwd.getpwnam(name)
        return User(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=Path(entry.pw_dir), system_dir=system_dir)

    yield make
    _stop_everything(system_dirs().state)  # their jobs first: a user is removed with nothing left running
    for name in made:
        subprocess.run(["userdel", "-r", "-f", name], check=False, capture_output=True)
