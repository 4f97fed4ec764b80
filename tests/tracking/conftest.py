"""Real trackers over real processes: each variant this machine offers (cgroup ones need root and a
writable hierarchy, and are skipped with the reason otherwise), in a fresh home and cgroup instance
that are removed after the test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runai_lite.backends.local.paths import Home, open_private
from runai_lite.backends.local.tracking.choice import (
    TrackingUnavailableError,
    choose_tracking,
    open_tracker,
    probe_machine,
    release,
)
from runai_lite.backends.local.tracking.files import AttemptFiles
from runai_lite.backends.local.tracking.protocol import ProcessTracker, TrackingKind
from tests.local.conftest import wait_for

__all__ = ["wait_for"]  # the tests here import it from this conftest


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def instance() -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    release(probe_machine(name), name)


@pytest.fixture(params=[kind.value for kind in TrackingKind])
def tracker(request, instance: str) -> ProcessTracker:
    probe = probe_machine(instance)
    try:
        choice = choose_tracking(request.param, probe)
    except TrackingUnavailableError as error:
        pytest.skip(str(error))
    return open_tracker(choice, probe, instance)


class Launcher:
    """Starts attempts of a tracker in a home and kills whatever is left at the end."""

    def __init__(self, tracker: ProcessTracker, home: Home):
        self.tracker, self.home, self.started = tracker, home, []

    def start(self, *argv: str, number: int | None = None, **options) -> AttemptFiles:
        files = AttemptFiles(self.home, "job", number if number is not None else len(self.started) + 1)
        log = open_private(self.home.job_log(files.name))
        try:
            self.started.append((files, self.tracker.start(files, argv, options.pop("env", dict(os.environ)),
                                                           options.pop("cwd", None), log, **options)))
        finally:
            os.close(log)
        return files

    def log(self, files: AttemptFiles) -> str:
        return self.home.job_log(files.name).read_text()

    def close(self) -> None:
        for files, child in self.started:
            self.tracker.kill(files)
            child.wait(timeout=10)
            wait_for(lambda files=files: not self.tracker.alive(files), what="the attempt to be gone")
            self.tracker.cleanup(files)


@pytest.fixture
def launcher(tracker: ProcessTracker, tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tracker, Home.at(tmp_path / "home"))
    yield launcher
    launcher.close()
