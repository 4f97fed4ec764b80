"""A personal daemon's socket serves its owner alone: even root, who can reach it, is refused, so
that nothing is submitted to someone's home in their name by another account."""

from __future__ import annotations

import stat

import pytest

from runai_lite.backends.local import protocol
from runai_lite.errors import UserError
from runai_lite.submission.flags import SubmitFlags

from .conftest import needs_root, wait_for


@needs_root
def test_a_personal_daemon_refuses_a_peer_of_another_account(make_user) -> None:
    alice = make_user("alice")
    env = {"RUNAI_LITE_HOME": str(alice.home / "rl"), "RUNAI_LITE_RUNTIME": "process"}
    alice.run("runai-adm", "local", "init", "--simulate", "T4:1", env=env, check=True)
    alice.run("runai-adm", "project", "create", "team-a", "--deserved-gpus", "1", env=env, check=True)
    try:
        alice.runai("submit", "mine", "-p", "team-a", "-i", "img", "--", "sleep", "600", env=env, check=True)
        socket_path = alice.home / "rl" / "api.sock"
        wait_for(socket_path.exists, "alice's daemon's socket")
        owner = socket_path.lstat()
        assert (owner.st_uid, stat.S_IMODE(owner.st_mode)) == (alice.uid, 0o600)

        flags = SubmitFlags(project="team-a", image="img", name="planted", command=("sleep", "600"))
        context = {"cwd": "/", "umask": 0o022, "env": {}}
        with pytest.raises(UserError, match=f"serves {alice.name}'s personal home; you are root"):
            protocol.call(protocol.connect(socket_path), "submit_flags", flags=flags.to_json(), context=context)
        listed = alice.runai("list", "-p", "team-a", env=env, check=True).stdout
        assert "mine" in listed and "planted" not in listed
    finally:
        alice.runai("delete", "job", "--all", "-p", "team-a", env=env)
        alice.run("runai-adm", "local", "stop", env=env)
