"""Root is safe in a user's personal home: it starts no daemon there (a daemon serves only its
owner's home) and follows none of the links the user planted."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from runai_lite.backends.local.paths import lock_holder

from .conftest import needs_root

pytestmark = [pytest.mark.e2e, needs_root]


def test_root_on_a_users_personal_home_starts_nothing_and_follows_no_planted_link(make_user, tmp_path: Path,
                                                                                  monkeypatch) -> None:
    alice = make_user("alice")
    home = alice.home / ".local" / "share" / "runai-lite"
    personal = {"RUNAI_LITE_HOME": str(home)}
    alice.run("runai-adm", "local", "init", "--simulate", "T4:1", env=personal, check=True)
    alice.run("runai-adm", "local", "stop", env=personal, check=True)
    precious = tmp_path / "root-owned"
    precious.write_text("root's\n")
    precious.chmod(0o644)
    planted = home / "daemon.log"
    subprocess.run(["ln", "-sf", str(precious), str(planted)], user=alice.uid, group=alice.gid, check=True)
    before = {p.name: (p.lstat().st_uid, p.lstat().st_mode) for p in home.iterdir()}

    monkeypatch.setenv("RUNAI_LITE_HOME", str(home))
    for args in (["runai", "list", "-A"], ["runai", "logs", "-p", "team-a", "anything"],
                 ["runai-adm", "local", "start"]):
        module = {"runai": "runai_lite.cli.runai", "runai-adm": "runai_lite.cli.runai_adm"}[args[0]]
        done = subprocess.run([sys.executable, "-m", module, *args[1:]], capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, (args, done.stderr)
        assert f"belongs to {alice.name} (uid {alice.uid}), not to you (root (uid 0))" in done.stderr
        assert "Traceback" not in done.stderr

    assert lock_holder(home / "daemon.lock") is None  # no daemon, root's or anyone's
    assert precious.read_text() == "root's\n" and stat.S_IMODE(precious.stat().st_mode) == 0o644
    assert {p.name: (p.lstat().st_uid, p.lstat().st_mode) for p in home.iterdir()} == before
    assert all(p.lstat().st_uid == alice.uid for p in home.rglob("*"))
    # alice's own commands still work in her home (nothing of root's left to trip on)
    assert alice.run("runai", "list", "-A", env=personal).returncode == 1  # her link is refused, to her too
    os.unlink(planted)
    assert alice.run("runai", "list", "-A", env=personal).returncode == 0
    alice.run("runai-adm", "local", "stop", env=personal, check=True)
