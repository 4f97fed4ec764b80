"""A personal home is its owner's alone: a home owned by someone else, or writable by others, is
refused before anything is written there; links planted in a home are never followed; `local stop`
finds the daemon through a symlinked home path and says truthfully whether it stopped it."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_stop
from runai_lite.backends.local.control import daemon_running
from runai_lite.backends.local.paths import Home, open_private, write_private
from runai_lite.errors import OperationalError, UserError

from .conftest import make_backend

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: it hands a home to another uid")


def _runai(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNAI_LITE_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", *args], env=env, capture_output=True,
                          text=True, timeout=60)


@needs_root
def test_a_home_owned_by_another_account_is_refused_and_nothing_is_written_there(tmp_path: Path) -> None:
    home = tmp_path / "someone-elses"
    home.mkdir(mode=0o700)
    os.chown(home, 54321, 54321)
    done = _runai(home, "list", "-A")
    assert done.returncode == 2, done.stderr
    assert f"the runai-lite home {home} belongs to uid 54321, not to you" in done.stderr
    assert "Traceback" not in done.stderr
    assert list(home.iterdir()) == []  # no database, no log, no daemon


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_home_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    home = tmp_path / "open"
    home.mkdir()
    home.chmod(mode)
    done = _runai(home, "list", "-A")
    assert done.returncode == 2 and "is writable by other users" in done.stderr and f"chmod 700 {home}" in done.stderr
    assert list(home.iterdir()) == [] and stat.S_IMODE(home.stat().st_mode) == mode  # refused, not "fixed"


def test_a_link_planted_in_a_home_is_not_followed(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    precious = tmp_path / "precious"
    precious.write_text("keep me\n")
    precious.chmod(0o644)
    home.daemon_log.symlink_to(precious)
    done = _runai(home.root, "list", "-A")
    assert done.returncode == 1, done.stderr
    assert f"refusing to open {home.daemon_log}: it is a symbolic link" in done.stderr
    assert "Traceback" not in done.stderr
    assert precious.read_text() == "keep me\n" and stat.S_IMODE(precious.stat().st_mode) == 0o644
    assert not daemon_running(home)


def test_private_files_are_opened_without_following_links_or_extra_names(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    target = tmp_path / "target"
    target.write_text("x")
    (home.logs / "linked.log").symlink_to(target)
    with pytest.raises(OperationalError, match="symbolic link"):
        open_private(home.logs / "linked.log")
    os.link(target, home.logs / "hardlinked.log")
    with pytest.raises(OperationalError, match="not a regular file"):
        open_private(home.logs / "hardlinked.log")
    (home.root / f".daemon.pid.{os.getpid()}.tmp").symlink_to(target)  # a planted temporary name
    write_private(home.daemon_pid, "42\n")
    assert home.daemon_pid.read_text() == "42\n" and target.read_text() == "x"
    assert stat.S_IMODE(home.daemon_pid.stat().st_mode) == 0o600


def test_a_logs_directory_replaced_by_a_link_is_refused(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    home.logs.rmdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    home.logs.symlink_to(elsewhere)
    with pytest.raises(UserError, match="is not a directory"):
        Home.at(home.root)


def test_local_stop_through_a_symlinked_home_stops_the_daemon(home: Path, tmp_path: Path) -> None:
    backend = make_backend(home)
    backend.close()
    alias = tmp_path / "alias"
    alias.symlink_to(home)
    assert Home.at(alias).root == home.resolve()
    assert daemon_stop(alias) is True
    assert not daemon_running(Home.at(home))
    assert daemon_stop(alias) is False


def test_local_stop_of_a_stopped_daemon_kills_it_and_says_so_truthfully(home: Path) -> None:
    backend = make_backend(home)
    backend.close()
    pid = int(Home.at(home).daemon_pid.read_text().split()[0])
    os.kill(pid, signal.SIGSTOP)  # it cannot act on SIGTERM
    try:
        assert daemon_stop(home, timeout=1.0) is True
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    assert not daemon_running(Home.at(home))


def test_a_backend_of_a_home_refuses_before_touching_it(tmp_path: Path) -> None:
    home = tmp_path / "open"
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    with pytest.raises(UserError, match="writable by other users"):
        LocalBackend(home)
