"""Each tracker over real processes: what a job leaves behind is found and killed with it, an
attempt is over only when nothing of it is left, signals and freezing reach the whole attempt."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from runai_lite.backends.local.tracking.protocol import Phase, TrackingKind

from .conftest import Launcher, pid_alive, wait_for

# The grandchild leaves the process group (and writes its pid once it has); the main process waits
# for that, then exits 0.
ESCAPE = "setsid sh -c 'echo $$ > {pidfile}; exec sleep 120' & while [ ! -s {pidfile} ]; do sleep 0.01; done; exit 0"


def test_a_setsid_grandchild_keeps_the_attempt_draining_until_it_is_killed(launcher: Launcher, tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"
    files = launcher.start("sh", "-c", ESCAPE.format(pidfile=pidfile))
    wait_for(lambda: files.exit_code() is not None, what="the main process to exit")
    grandchild = int(wait_for(lambda: pidfile.exists() and pidfile.read_text().strip()))
    assert pid_alive(grandchild)
    status = launcher.tracker.status(files)
    assert (status.phase, status.code) == (Phase.DRAINING, 0)  # not over: its grandchild still runs

    assert grandchild in launcher.tracker.kill(files)
    final = wait_for(lambda: (s := launcher.tracker.status(files)).phase is Phase.EXITED and s, what="exited")
    assert final.code == 0 and not pid_alive(grandchild)


def test_an_attempt_killed_outright_is_over_with_137_once_every_process_is_gone(launcher: Launcher) -> None:
    files = launcher.start("sh", "-c", "sleep 120 & setsid sleep 120 & wait")
    wait_for(lambda: files.pid() is not None, what="the shim")
    assert launcher.tracker.status(files).phase is Phase.RUNNING
    wait_for(lambda: len(launcher.tracker.kill(files)) >= 1 or launcher.tracker.status(files).phase is Phase.EXITED,
             what="the kill")
    final = wait_for(lambda: (s := launcher.tracker.status(files)).phase is Phase.EXITED and s, what="exited")
    assert final.code is None  # the tracker does not know the main process's end; supervision knows it killed it


def test_sigterm_reaches_every_process_and_the_main_exit_is_recorded(launcher: Launcher, tmp_path: Path) -> None:
    ready, mark = tmp_path / "trap-set", tmp_path / "grandchild-got-term"
    script = (f"setsid sh -c 'trap \"touch {mark}; exit 0\" TERM; touch {ready}; while :; do sleep 0.05; done' & "
              "sleep 120")
    files = launcher.start("sh", "-c", script)
    wait_for(ready.exists, what="the grandchild to set its trap")
    assert launcher.tracker.signal(files, signal.SIGTERM)
    wait_for(lambda: files.exit_code() is not None, what="the main process to end on SIGTERM")
    assert files.exit_code() == 128 + signal.SIGTERM
    wait_for(mark.exists, what="the setsid grandchild to get SIGTERM")
    wait_for(lambda: launcher.tracker.status(files).phase is Phase.EXITED, what="nothing left")


def test_a_frozen_attempt_makes_no_progress_until_thawed(launcher: Launcher, tmp_path: Path) -> None:
    ticks = tmp_path / "ticks"
    files = launcher.start("sh", "-c", f"setsid sh -c 'while :; do echo x >> {ticks}; sleep 0.01; done' & sleep 120")
    wait_for(lambda: ticks.exists() and ticks.stat().st_size > 0, what="ticks")
    launcher.tracker.freeze(files)
    time.sleep(0.05)  # let a write that was under way land
    frozen_at = ticks.stat().st_size
    time.sleep(0.3)
    assert ticks.stat().st_size == frozen_at
    launcher.tracker.thaw(files)
    wait_for(lambda: ticks.stat().st_size > frozen_at, what="progress after thawing")


def test_a_missing_command_ends_the_attempt_with_127_and_says_what(launcher: Launcher) -> None:
    files = launcher.start("no-such-command-anywhere")
    final = wait_for(lambda: (s := launcher.tracker.status(files)).phase is Phase.EXITED and s, what="exited")
    assert final.code == 127 and "no-such-command-anywhere" in launcher.log(files)


def test_an_attempt_never_launched_is_absent(launcher: Launcher) -> None:
    from runai_lite.backends.local.tracking.files import AttemptFiles

    assert launcher.tracker.status(AttemptFiles(launcher.home, "never", 1)).phase is Phase.ABSENT


def _members(launcher: Launcher, files) -> list[int]:
    """Live processes of the attempt as the tracker sees them (via its cgroup or lock holders)."""
    tracker = launcher.tracker
    if tracker.kind is TrackingKind.PROCESS_TREE:
        from runai_lite.backends.local.tracking.process_tree import lock_holders

        return lock_holders(files.lock)
    from runai_lite.backends.local.tracking import cgroup

    return cgroup.procs(tracker.cgroups(files)[0])


def test_the_processes_of_an_attempt_are_in_its_cgroup(launcher: Launcher, tmp_path: Path) -> None:
    if launcher.tracker.kind is TrackingKind.PROCESS_TREE:
        pytest.skip("the process tree has no cgroup (its lock holders are covered above)")
    files = launcher.start("sh", "-c", "setsid sleep 120 & sleep 120")
    members = wait_for(lambda: len(m := _members(launcher, files)) >= 3 and m, what="three processes")
    assert files.pid() in members
    assert all(os.path.exists(f"/proc/{pid}") for pid in members)
