"""`runai exec`, `runai bash` and `runai attach` through the real CLI and daemon: flags anywhere
before `--`, input passed only with -i, a terminal of the command's own with -t (also when runai
itself runs in a pseudo-terminal, as a person's shell would), and the command's exit code as
runai's."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

import pytest

from tests.e2e.cli_harness import WAIT_SECONDS, Cli


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    cli = Cli(tmp_path_factory.mktemp("exec") / "home")
    cli.adm("local", "init", "--simulate", "T4:1")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.adm("project", "create", "team-b", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")
    cli.runai("submit", "box", "-p", "team-b", "-i", "busybox", "-e", "GREETING=hi", "--", "sleep", "600")
    cli.wait_for("box Running", lambda jobs: jobs.get("box", {}).get("status") == "Running")
    yield cli
    cli.shut_down()


def in_terminal(cli: Cli, *args: str, typed: bytes = b"") -> tuple[int, str]:
    """Run `runai ARGS` with a pseudo-terminal as its stdin, stdout and stderr, type `typed` into
    it, and return its exit code and everything the terminal showed."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "runai_lite.cli.runai", *args], env=cli.env, cwd=cli.home,
                               stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    if typed:
        os.write(master, typed)
    shown = b""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: runai and everything it started have closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    if process.poll() is None:
        process.kill()
    return process.wait(timeout=WAIT_SECONDS), shown.decode(errors="replace")


@pytest.mark.e2e
@pytest.mark.parametrize("args", [
    ["exec", "box", "-it", "-p", "team-b", "--"],
    ["exec", "-it", "-p", "team-b", "box", "--"],
    ["exec", "-p", "team-b", "box", "--stdin", "--tty", "--"],
    ["exec", "-ti", "-p", "team-b", "box"],
])
def test_exec_it_gives_the_command_a_terminal_and_its_exit_code(cli: Cli, args):
    script = 'test -t 0 && test -t 1 && echo "terminal $GREETING"; read word; echo "got $word"; exit 5'
    code, shown = in_terminal(cli, *args, "sh", "-c", script, typed=b"typed\n")
    assert code == 5, shown
    assert "terminal hi" in shown and "got typed" in shown


@pytest.mark.e2e
def test_runai_bash_is_an_interactive_shell_in_the_job(cli: Cli):
    code, shown = in_terminal(cli, "bash", "box", "-p", "team-b",
                              typed=b'echo "in $RUNAI_JOB_NAME"; tty; exit 4\n')
    assert code == 4, shown
    assert "in box" in shown and "/dev/pts/" in shown


@pytest.mark.e2e
def test_input_reaches_the_command_only_with_stdin(cli: Cli):
    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", "exec", "box", *flags, "-p", "team-b",
                               "--", "cat"], env=cli.env, cwd=cli.home, input="piped\n", capture_output=True,
                              text=True, timeout=WAIT_SECONDS)

    assert run("-i").stdout == "piped\n"
    closed = run()
    assert closed.returncode == 0 and closed.stdout == ""
    # -t without a terminal around runai: the command still gets one (runai relays it)
    alone = subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", "exec", "-t", "-p", "team-b", "box", "--",
                            "sh", "-c", "tty; exit 3"], env=cli.env, cwd=cli.home, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=WAIT_SECONDS)
    assert alone.returncode == 3 and alone.stdout.startswith("/dev/pts/")


@pytest.mark.e2e
def test_attach_follows_the_output_and_ends_with_the_jobs_exit_code(cli: Cli):
    cli.runai("submit", "short", "-i", "busybox", "--backoff-limit", "0", "--",
              "sh", "-c", "echo first; sleep 1; echo second; exit 3")
    done = cli.runai("attach", "short", "-it", check=False)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "first\nsecond\n"
    assert "input closed" in done.stderr


@pytest.mark.e2e
def test_exec_in_another_projects_job_name_or_a_missing_program_exits_2(cli: Cli):
    assert cli.runai("exec", "box", "--", "true", check=False).returncode == 2  # box is in team-b, not team-a
    missing = cli.runai("exec", "box", "-p", "team-b", "--", "no-such-program-xyz", check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("Error: no-such-program-xyz: command not found")
