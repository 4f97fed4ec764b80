"""The README's commands, run exactly as written there, each block on a fresh machine (a temporary
RUNAI_LITE_HOME with the real daemon, SQLite and processes): the one-command "Try it" chain (less its
`pip install`, done already) and the fraction example. What they print must match the README's
own transcript: every line of a command's output, except the few fields that differ by machine and
moment (ages, the user, the host's name, a daemon's pid and home) where the README shows it, and every job row of `runai list`
by name, status, type, project and GPUs; a `runai list` is repeated until the jobs reach the
README's states."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.cli_harness import REPO, WAIT_SECONDS, Cli, cli  # noqa: F401 - the fixture

README = (REPO / "README.md").read_text()
BIN = Path(sys.executable).parent
# `runai-adm local init` prints where and how it runs: those values are this machine's.
MACHINE_LINES = re.compile(r"^(Daemon|Mode|Home|Node|Enforcement|Processes|Devices):")
COLUMNS = re.compile(r" {3,}")
IGNORED_COLUMNS = {"AGE", "USER", "NODE"}
# The README's machine is called `vm`; simulated GPUs and their MIG instances get UUIDs of their own.
README_HOST = re.compile(r"\bvm\b")
UUID = re.compile(r"\b(GPU|MIG)-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}\b")
READING = (["runai", "describe"], ["runai", "top"], ["runai", "logs"])  # commands safe to repeat
EVENT_AGE = re.compile(r"^\d+[smhd] +(?=[A-Z])")


def section(title: str) -> str:
    start = README.index(f"\n## {title}")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def transcript(block: str) -> list[tuple[str, list[str]]]:
    """`$ command` lines of a README block, each with the output lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
    return steps


def table(lines: list[str]) -> dict[str, dict[str, str]]:
    """A `runai list` table's rows by job name, without the columns that differ by machine."""
    rows = [line for line in lines if line and not line.startswith("Showing jobs")]
    if not rows:
        return {}
    header = COLUMNS.split(rows[0])
    found = {}
    for row in rows[1:]:
        cells = dict(zip(header, COLUMNS.split(row), strict=True))
        found[cells["NAME"]] = {k: v for k, v in cells.items() if k not in IGNORED_COLUMNS}
    return found


@pytest.fixture
def shell(cli: Cli):
    if shutil.which("runai", path=str(BIN)) is None:
        pytest.skip(f"runai is not installed in {BIN} (pip install -e .)")
    env = {**cli.env, "PATH": os.pathsep.join([str(BIN), cli.env.get("PATH", "")])}

    def run(command: str) -> subprocess.CompletedProcess[str]:
        # The README's text is a shell line (`$(hostname)`, `&&`): bash runs it as a reader would.
        done = subprocess.run(["bash", "-c", command], env=env, cwd=cli.home, capture_output=True, text=True,
                              timeout=WAIT_SECONDS)
        assert done.returncode == 0 and "Traceback" not in done.stderr, \
            f"{command} exited {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        return done

    return run


def check_listing(run, command: str, expected: list[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        got = run(command).stdout.splitlines()
        if table(got) == table(expected) and got[:1] == expected[:1]:
            return
        if time.monotonic() > deadline:
            raise AssertionError("`{}` printed\n{}\nwhere the README shows\n{}".format(
                command, "\n".join(got), "\n".join(expected)))
        time.sleep(0.3)


def comparable(lines: list[str], host: str) -> list[str]:
    """Output lines less this machine's values: its own lines, UUIDs, event ages, its host name
    where the README shows `vm`; trailing blank lines dropped."""
    kept = [EVENT_AGE.sub("", UUID.sub(r"\1-UUID", README_HOST.sub(host, line))).rstrip()
            for line in lines if not MACHINE_LINES.match(line)]
    while kept and not kept[-1]:
        kept.pop()
    return kept


def play(run, block: str, host: str = "vm") -> dict[str, list[str]]:
    """Run a README block's commands in order, checking each shown output; returns what each printed."""
    printed: dict[str, list[str]] = {}
    for command, expected in transcript(block):
        if command == "runai list":
            check_listing(run, command, expected)
            continue
        got = printed[command] = run(command).stdout.splitlines()
        if not expected:
            continue
        want = comparable(expected, host)
        elided = want[0] == "..."  # the README elides the top: the rest is how the output ends
        want = want[1:] if elided else want
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            have = comparable(got, host)
            have = have[len(have) - len(want):] if elided else have
            if have == want:
                break
            # a reading command may run before the daemon has written all it shows (an event)
            assert command.split()[:2] in READING and time.monotonic() < deadline, \
                "`{}` printed\n{}\nwhere the README shows\n{}".format(command, "\n".join(got), "\n".join(expected))
            time.sleep(0.3)
            got = printed[command] = run(command).stdout.splitlines()
    return printed


@pytest.mark.e2e
def test_the_try_it_chain_runs_as_written(shell):
    (chain,) = code_blocks(section("Try it"))[:1]
    chain = chain.replace("\\\n", " ")
    install, _, rest = chain.partition("pip install . ")
    assert install and rest.lstrip().startswith("&& runai-adm local init")
    done = shell(rest.lstrip()[3:])
    listing = done.stdout.splitlines()
    listing = listing[next(i for i, line in enumerate(listing) if line.startswith("Showing jobs")):]
    expected = code_blocks(section("Try it"))[1].splitlines()
    assert table(listing) == table(expected) and listing[0] == expected[0]
    assert {row["STATUS"] for row in table(listing).values()} == {"Running"}
    assert socket.gethostname() in done.stdout


@pytest.mark.e2e
def test_the_fraction_example_runs_as_written(shell):
    (block,) = code_blocks(section("Fractions"))[:1]
    steps = transcript(block)
    assert [c.split()[:2] for c, _ in steps][-3:] == [["runai", "submit"], ["runai", "submit"], ["runai", "list"]]
    play(shell, block)


@pytest.mark.e2e
def test_the_dynamic_mig_quickstart_runs_as_written(shell):
    blocks = code_blocks(section("Quickstart: dynamic MIG"))
    assert len(blocks) == 4
    host = socket.gethostname()
    for block in blocks:
        printed = play(shell, block, host)
        if "runai top node" in printed:
            # the UUID `exec` shows is mig1's instance, as `top node` lists it
            (device,) = printed["runai exec mig1 -- sh -c 'echo $NVIDIA_VISIBLE_DEVICES'"]
            assert any(line.split()[-2:] == ["team-a/mig1", device] for line in printed["runai top node"])
