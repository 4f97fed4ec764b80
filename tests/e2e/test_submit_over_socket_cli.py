"""`runai submit` hands the flags to the home's running daemon over the home's own socket; the
daemon checks them and stores the job as the CLI would have. Where no daemon listens (not started
yet, or a home whose path is too long for a socket's name), the CLI does it itself."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from runai_lite.backends.local import protocol
from runai_lite.errors import NotFoundError, UserError
from runai_lite.submission.flags import SubmitFlags
from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture


def _setup(cli: Cli) -> None:
    cli.adm("local", "init", "--simulate", "T4:1")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")


@pytest.mark.e2e
def test_the_running_daemon_takes_submissions_on_a_socket_only_its_owner_can_open(cli: Cli):
    _setup(cli)
    cli.runai("submit", "first", "-i", "img", "--", "sleep", "600")  # starts the daemon
    socket_path = cli.home / "api.sock"
    mode = socket_path.lstat()
    assert stat.S_ISSOCK(mode.st_mode) and stat.S_IMODE(mode.st_mode) == 0o600 and mode.st_uid == os.geteuid()

    shown = cli.runai("submit", "-i", "img", "--name-prefix", "exp", "-e", "A=1", "--", "sleep", "600")
    assert "The job 'exp-1' has been submitted successfully" in shown.stdout
    refused = cli.runai("submit", "bad", "-i", "img", "--gpu", "half", check=False)
    assert refused.returncode == 2 and refused.stderr.startswith("Error: invalid --gpu")
    assert "Traceback" not in refused.stderr
    assert set(cli.jobs()) == {"first", "exp-1"}  # the refused one changed nothing
    assert cli.describe("exp-1")["user"] == cli.describe("first")["user"]

    # The same request straight on the socket: the daemon reads and checks it all.
    flags = SubmitFlags(project="team-a", image="img", name="raw", command=("sleep", "600"))
    context = {"cwd": str(cli.home), "umask": 0o022, "env": {"PATH": os.environ["PATH"]}}
    receipt = protocol.call(protocol.connect(socket_path), "submit_flags", flags=flags.to_json(), context=context)
    assert (receipt["name"], receipt["project"]) == ("raw", "team-a")
    with pytest.raises(NotFoundError, match="project team-z was not found"):
        protocol.call(protocol.connect(socket_path), "submit_flags",
                      flags=flags._replace(project="team-z").to_json(), context=context)
    with pytest.raises(UserError, match="invalid request submit_flags"):
        protocol.call(protocol.connect(socket_path), "submit_flags", flags={"project": "team-a"}, context=context)
    # a CLI of a later release, while the daemon of the earlier one still runs
    with protocol.connect(socket_path) as conn:
        protocol.send(conn, {**protocol.request("submit_flags", flags=flags.to_json(), context=context), "version": 99})
        answer = protocol.reply(conn)
    assert answer["ok"] is False and "runai-adm local stop" in answer["error"]["hint"]

    cli.adm("local", "stop")
    assert not socket_path.exists()


@pytest.mark.e2e
def test_a_home_too_long_for_a_socket_name_still_takes_submissions(tmp_path: Path):
    cli = Cli(tmp_path / ("h" * 60) / ("o" * 60) / "home")
    try:
        _setup(cli)
        cli.runai("submit", "first", "-i", "img", "--", "sleep", "600")
        cli.runai("submit", "second", "-i", "img", "--", "sleep", "600")  # the daemon runs, without a socket
        assert not (cli.home / "api.sock").exists()
        assert "not serving" in cli.daemon_log()
        assert set(cli.jobs()) == {"first", "second"}
    finally:
        cli.shut_down()
