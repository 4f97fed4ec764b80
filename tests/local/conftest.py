"""Fixtures for the embedded backend: a temporary home with a simulated A100-SXM4-40GB, a real
daemon and real job processes, all torn down (processes killed) after each test."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_stop, local_init
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import Store
from runai_lite.backends.local.tracking import cgroup
from runai_lite.backends.local.tracking.choice import instance_name, probe_machine, release
from runai_lite.model import GpuRequest, JobSpec, JobType

GRACE_SECONDS = 1.0


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, what: str = "condition") -> object:
    """Poll until `predicate()` is truthy; its value. Fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_everything(home: Path) -> None:
    """Stop the daemon and SIGKILL every job process group the home knows of."""
    daemon_stop(home, timeout=5)
    run = home / "run"
    pids = set()
    if (home / "state.db").exists():
        store = Store(home / "state.db")
        pids |= {r.pid for r in store.all_jobs() if r.pid is not None}
        store.close()
    for pidfile in run.glob("*.pid") if run.exists() else ():
        try:
            pids.add(int(pidfile.read_text()))
        except ValueError:
            pass
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    discard_cgroups(home)


def discard_cgroups(home: Path) -> None:
    """Kill what is left in the home's attempt cgroups (a daemon that was killed leaves them) and
    remove them, so that tests leave no cgroup behind."""
    instance = instance_name(Home.at(home).root) if home.exists() else None
    if instance is None:
        return
    probe = probe_machine(instance)
    for use in (probe.v2, *probe.v1.values()):
        if not use.usable:
            continue
        root = cgroup.instance_dir(use.path, instance)
        for directory in root.glob("*") if root.exists() else ():
            if not directory.is_dir():
                continue
            try:
                cgroup.write(directory, "cgroup.kill", "1")
            except OSError:
                cgroup.signal_all(directory, signal.SIGKILL)
            cgroup.remove(directory, timeout=5.0)
    release(probe, instance)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh home; its daemon checks the store/driver invariants after every cycle, and the test
    fails if any broke."""
    monkeypatch.setenv(CHECK_ENV, "1")
    path = tmp_path / "home"
    yield path
    kill_everything(path)
    broken = path / "invariants.log"
    assert not broken.exists(), broken.read_text()


RETRY_BACKOFF = (0.05, 0.2)  # a failed job's first retry delay and its cap, small for tests


def make_backend(home: Path, simulate: str = "A100-SXM4-40GB:1") -> LocalBackend:
    local_init(home, simulate=simulate, enforcement="auto", grace_seconds=GRACE_SECONDS,
               retry_backoff=RETRY_BACKOFF)
    backend = LocalBackend(home)
    backend.create_project("team-a", 2)
    return backend


@pytest.fixture
def backend(home: Path) -> Iterator[LocalBackend]:
    """An A100 with MIG mode off: fraction and whole-GPU jobs."""
    backend = make_backend(home, "A100-SXM4-40GB:1:mig-off")
    yield backend
    backend.close()


@pytest.fixture
def mig_backend(home: Path) -> Iterator[LocalBackend]:
    """The A100 marked dynamic-MIG."""
    backend = make_backend(home)
    backend.set_dynamic_mig(backend.store.config("node"), True)
    yield backend
    backend.close()


def spec(name: str, *command: str, request: GpuRequest | None = None, type: JobType = JobType.TRAIN,
         **fields) -> JobSpec:
    if type is not JobType.TRAIN:
        fields.setdefault("backoff_limit", 0)
    return JobSpec(name=name, project=fields.pop("project", "team-a"), image="gcr.io/run-ai-demo/quickstart-cuda",
                   type=type, request=request, command=command, **fields)


def status_of(backend: LocalBackend, name: str, project: str = "team-a") -> str:
    return backend.get_job(project, name).status.value


def wait_status(backend: LocalBackend, name: str, *statuses: str, timeout: float = 15.0) -> str:
    return wait_for(lambda: (s := status_of(backend, name)) in statuses and s, timeout,
                    f"{name} to be {'/'.join(statuses)}")
