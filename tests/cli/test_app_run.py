"""The console-script entry (`app.run`): Typer builds only the command a run names, and the process
ends without the interpreter's teardown but with everything an exit owes (flushed output, `atexit`,
the exit status, threads still working)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from runai_lite.cli import runai
from runai_lite.cli.app import only_the_named_command

REPO = Path(__file__).resolve().parents[2]


def _names(app: typer.Typer) -> set[str]:
    return set(typer.main.get_group(app).commands)


@pytest.mark.parametrize(("args", "kept"), [
    (["submit", "job1", "-i", "img"], {"submit"}),  # a command
    (["list", "-p", "team-a"], {"list"}),  # a group: all of its own subcommands stay
    (["describe", "job", "a"], {"describe"}),
    (["whoami"], {"whoami"}),  # a command named after its function
])
def test_a_run_that_names_a_command_builds_only_that_one(args, kept):
    assert _names(only_the_named_command(runai.app, args)) == kept
    assert len(_names(runai.app)) > 15  # the app itself is left whole


@pytest.mark.parametrize("args", [[], ["--help"], ["lst"], ["-p", "x", "list"]])
def test_help_typos_and_options_first_get_the_whole_tree(args):
    assert only_the_named_command(runai.app, args) is runai.app


def _console(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RUNAI_LITE_HOME": str(tmp_path), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "runai_lite.cli.runai", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_typo_is_still_answered_with_the_close_name(tmp_path):
    done = _console("lst", tmp_path=tmp_path)
    assert done.returncode == 2 and "Did you mean 'list'?" in done.stderr


def test_a_pruned_group_still_parses_its_own_command(tmp_path):
    # A lone command would otherwise become the program itself and take "version" for an argument.
    done = _console("version", tmp_path=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("runai-lite ")


EXIT = """
import atexit, sys, threading, time
from runai_lite.cli.app import exit_without_teardown
atexit.register(lambda: print("atexit ran"))
{before}
sys.stdout.write("buffered output\\n")  # not flushed yet: the exit must flush it
exit_without_teardown({code})
"""


def _exit(code: str, before: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", EXIT.format(code=code, before=before)],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("code", "status"), [("None", 0), ("0", 0), ("3", 3), ("2", 2)])
def test_the_exit_status_output_and_atexit_are_kept(code, status):
    done = _exit(code)
    assert (done.returncode, done.stdout) == (status, "buffered output\natexit ran\n")


def test_a_message_exits_1_on_stderr_as_the_interpreter_does():
    done = _exit("'cannot go on'")
    assert (done.returncode, done.stderr) == (1, "cannot go on\n")


def test_a_thread_still_working_is_waited_for():
    worker = ("threading.Thread(target=lambda: (time.sleep(0.3), print('worker done', flush=True)), "
              "daemon=False).start()")
    done = _exit("4", before=worker)
    assert done.returncode == 4 and "worker done" in done.stdout
