"""`runai exec` in a container keeps the process backend's exit-code rule: a program the container
does not have is "command not found" (exit 2), one it cannot run exit 1, both said once; the
program's own exit codes and errors pass through unchanged. A stand-in runtime (a shell script that
answers as podman does) plays the container runtime; tests/containers runs the real one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from runai_lite.backends.local.container_exec import exec_in_container, refusal_of
from runai_lite.errors import OperationalError, UserError

PODMAN_NOT_FOUND = ('Error: runc: exec failed: unable to start container process: exec: "nosuch": executable file '
                    "not found in $PATH: OCI runtime attempted to invoke a command that was not found")
PODMAN_DENIED = ('Error: runc: exec failed: unable to start container process: exec: "/www/index.html": '
                 "permission denied: OCI permission denied")


@pytest.fixture
def runtime(tmp_path: Path) -> Path:
    """`runtime CODE` runs its stdin as a shell script and exits CODE, as `podman exec` would."""
    script = tmp_path / "runtime"
    script.write_text('#!/bin/sh\nsh -c "$1"\nexit "$2"\n')
    script.chmod(0o755)
    return script


def run(runtime: Path, script: str, code: int, capfd: pytest.CaptureFixture[str], program: str = "nosuch"):
    result = exec_in_container([str(runtime), script, str(code)], program, stdin=False, tty=False)
    return result, capfd.readouterr()


@pytest.mark.parametrize(("said", "code", "error", "message"), [
    (PODMAN_NOT_FOUND, 127, UserError, "nosuch: command not found"),
    (PODMAN_DENIED, 126, OperationalError, "cannot run nosuch: permission denied"),
])
def test_what_the_runtime_could_not_start_is_said_once_the_process_backends_way(runtime, capfd, said, code, error,
                                                                                message):
    with pytest.raises(error) as raised:
        run(runtime, f"echo '{said}' >&2", code, capfd)
    assert str(raised.value.message).startswith(message)
    assert raised.value.exit_code == (2 if error is UserError else 1)
    assert capfd.readouterr().err == ""  # the runtime's own line is not shown beside ours


@pytest.mark.parametrize(("script", "code", "err"), [
    ("echo 'sh: nosuch: not found' >&2", 127, "sh: nosuch: not found\n"),  # the program's own 127
    ("echo 'Error: my own message' >&2", 127, "Error: my own message\n"),  # looks like the runtime's, is not
    (f"echo '{PODMAN_NOT_FOUND}' >&2", 3, PODMAN_NOT_FOUND + "\n"),  # not the runtime's exit code
    ("echo out; echo 'warning' >&2; echo more >&2", 0, "warning\nmore\n"),
    ("true", 0, ""),
])
def test_the_programs_own_errors_and_exit_codes_pass_through(runtime, capfd, script, code, err):
    result, seen = run(runtime, script, code, capfd)
    assert (result, seen.err) == (code, err)


def test_a_long_error_output_is_not_held_back_until_the_end(runtime, capfd):
    script = f"{sys.executable} -c \"import sys; sys.stderr.write('Error: ' + 'x' * 100000)\""
    result, seen = run(runtime, script, 127, capfd)
    assert result == 127 and seen.err == "Error: " + "x" * 100000


def test_a_runtime_that_is_gone_is_an_operational_error(tmp_path):
    with pytest.raises(OperationalError, match="cannot run"):
        exec_in_container([str(tmp_path / "no-podman"), "exec"], "ls", stdin=False, tty=False)


def test_only_the_runtimes_exit_codes_with_its_reasons_are_refusals():
    assert refusal_of(127, PODMAN_NOT_FOUND.encode(), "x") is not None
    assert refusal_of(127, b"Error: something else", "x") is None
    assert refusal_of(1, PODMAN_NOT_FOUND.encode(), "x") is None
