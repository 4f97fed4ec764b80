"""A first day through the real CLI and daemon: `whoami` names the submitting account, `describe
node` shows the machine, one deserved GPU reads in the singular, and output into a pipe that was
closed (`runai logs big | head -1`) ends quietly."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys

import pytest

from tests.e2e.cli_harness import WAIT_SECONDS, Cli, cli  # noqa: F401 - the fixture


@pytest.mark.e2e
def test_whoami_describe_node_singular_and_a_closed_pipe(cli: Cli):
    cli.adm("local", "init", "--simulate", "T4:1")
    assert cli.adm("project", "create", "team-a", "--deserved-gpus", "1").stdout.endswith("created with 1 deserved GPU\n")
    cli.runai("config", "project", "team-a")

    me = pwd.getpwuid(os.geteuid()).pw_name
    assert cli.runai("whoami").stdout == f"{me}\n"

    (node,) = cli.nodes()
    described = cli.runai("describe", "node", node["name"])
    assert f"NAME:       {node['name']}" in described.stdout and "GPUs:       1 (1 free)" in described.stdout
    assert json.loads(cli.runai("describe", "node", node["name"], "-o", "json").stdout) == node
    assert cli.runai("describe", "node", "nowhere", check=False).returncode == 2

    cli.runai("submit", "big", "-i", "busybox", "--", "seq", "1", "200000")
    cli.wait_for("big Succeeded", lambda jobs: jobs["big"]["status"] == "Succeeded")
    assert cli.runai("list", "job", "-o", "json").stdout == cli.runai("list", "jobs", "-o", "json").stdout
    reader = subprocess.Popen([sys.executable, "-m", "runai_lite.cli.runai", "logs", "big"], env=cli.env, cwd=cli.home,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.readline() == b"1\n"
    reader.stdout.close()  # as `head -1` does
    assert reader.wait(timeout=WAIT_SECONDS) == 141
    assert reader.stderr.read() == b""
