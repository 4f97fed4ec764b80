"""Runs the real `runai` / `runai-adm` in subprocesses against a temporary RUNAI_LITE_HOME, as a
user would: real daemon, real SQLite, real job processes, simulated GPUs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 60  # a bound on waiting for the daemon, not a performance expectation


class Cli:
    def __init__(self, home: Path):
        self.home = home
        self.env = {**os.environ, "RUNAI_LITE_HOME": str(home),
                    "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        self.env.pop("KUBECONFIG", None)
        home.mkdir(mode=0o700, parents=True, exist_ok=True)

    def run(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        module = {"runai": "runai_lite.cli.runai", "runai-adm": "runai_lite.cli.runai_adm"}[program]
        done = subprocess.run([sys.executable, "-m", module, *args], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{program} {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}")
        return done

    def runai(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("runai", *args, check=check)

    def adm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("runai-adm", *args, check=check)

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {j["name"]: j for j in json.loads(self.runai("list", "-A", "-o", "json").stdout)}

    def nodes(self) -> list[dict[str, Any]]:
        return json.loads(self.runai("top", "node", "-o", "json").stdout)

    def describe(self, name: str) -> dict[str, Any]:
        return json.loads(self.runai("describe", "job", name, "-o", "json").stdout)

    def wait_for(self, what: str, condition: Callable[[dict[str, dict[str, Any]]], bool]) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            jobs = self.jobs()
            if condition(jobs):
                return jobs
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}; jobs now:\n{json.dumps(jobs, indent=1)}\n"
                                     f"daemon log:\n{self.daemon_log()}")
            time.sleep(0.2)

    def daemon_log(self) -> str:
        log = self.home / "daemon.log"
        return log.read_text()[-4000:] if log.exists() else "(no daemon.log)"

    def shut_down(self) -> None:
        """Delete every job (stopping its processes), then stop the daemon."""
        for project in json.loads(self.runai("list", "projects", "-o", "json", check=False).stdout or "[]"):
            self.runai("delete", "job", "--all", "-p", project["name"], check=False)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            listed = self.runai("list", "-A", "-o", "json", check=False)
            if listed.returncode != 0 or all(j["status"] in ("Deleted", "Succeeded", "Failed")
                                             for j in json.loads(listed.stdout or "[]")):
                break
            time.sleep(0.2)
        self.adm("local", "stop", check=False)


@pytest.fixture
def cli(tmp_path: Path):
    """A `Cli` on a fresh home, its daemon and jobs shut down after the test."""
    cli = Cli(tmp_path / "home")
    yield cli
    cli.shut_down()
