"""Security (issue 6 item 5): private state, no shell, argv-only commands, logs and exec of a job
only for its owner, and an RBAC that grants no Secrets and nothing cluster-wide it does not need."""

from __future__ import annotations

import re

import ast
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runai_lite.backends.kube.chart import chart_files
from runai_lite.backends.kube.install import Release, render_manifests
from runai_lite.backends.local import LocalBackend
from runai_lite.cli.config import CliConfig, save_config
from runai_lite.cli.runai import app
from runai_lite.cli.session import CliSession
from runai_lite.errors import UserError
from tests.local.conftest import backend, home, make_backend, spec, wait_status  # noqa: F401 - fixtures

REPO = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("runai_lite", "benchmarks", "tests", "deploy")
SHELL_TRUE = "shell" + "=True"  # spelled apart so that this file does not match its own search


def python_files() -> Iterator[Path]:
    for top in SOURCE_DIRS:
        yield from (REPO / top).rglob("*.py")


# ---------------------------------------------------------------------------------- no shell


def test_no_shell_anywhere_in_the_source_tree() -> None:
    """A grep, and a parse for the spellings a grep misses (`shell=1`, `**{"shell": True}` aside)."""
    found = []
    for path in python_files():
        text = path.read_text()
        if SHELL_TRUE in text.replace(" ", ""):
            found.append(f"{path}: {SHELL_TRUE}")
        for node in ast.walk(ast.parse(text)):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput",
                        "asyncio.create_subprocess_shell"):
                found.append(f"{path}:{node.lineno}: {name}")
            for keyword in node.keywords:
                if keyword.arg == "shell" and not (isinstance(keyword.value, ast.Constant) and not keyword.value.value):
                    found.append(f"{path}:{node.lineno}: shell={ast.unparse(keyword.value)}")
    assert found == []


def test_every_subprocess_of_the_product_is_started_from_an_argv_list() -> None:
    spawners = {"subprocess.Popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
                "subprocess.check_output"}
    strings = []
    for path in (REPO / "runai_lite").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) in spawners and node.args:
                first = node.args[0]
                if isinstance(first, (ast.JoinedStr, ast.BinOp)) or (
                        isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    strings.append(f"{path}:{node.lineno}: {ast.unparse(first)}")
    assert strings == []


# ---------------------------------------------------------------------------------- the embedded mode


def _modes(root: Path) -> dict[str, int]:
    found = {str(root): stat.S_IMODE(root.lstat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.mark.e2e
def test_state_directory_is_0700_and_every_file_in_it_0600_whatever_the_umask(home: Path,  # noqa: F811
                                                                                tmp_path: Path) -> None:
    previous = os.umask(0)  # the loosest umask: every mode below is the product's own choice
    try:
        backend = make_backend(home)
        backend.submit(spec("talker", "sh", "-c", "echo hello; echo oops >&2"))
        wait_status(backend, "talker", "Succeeded")
        assert list(backend.logs("team-a", "talker")) == ["hello", "oops"]
        config = save_config(CliConfig(project="team-a"), tmp_path / "config" / "cli.json")
    finally:
        os.umask(previous)
    modes = _modes(home)
    kinds = {name for name in modes if name != str(home)}
    for expected in ("state.db", "state.db-wal", "state.db-shm", "daemon.log", "daemon.pid", "daemon.lock",
                     "wake.fifo", "simulated-gpus.json", "logs", "run"):
        assert expected in kinds, f"{expected} was not made, so its mode was not checked"
    assert any(name.startswith("logs/") for name in kinds)
    for name, mode in modes.items():
        path = home / name
        assert mode == (0o700 if path.is_dir() else 0o600), f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    backend.close()


@pytest.mark.e2e
def test_job_commands_and_exec_reach_no_shell(backend: LocalBackend, tmp_path: Path) -> None:  # noqa: F811
    work = tmp_path / "work"
    work.mkdir()
    tricks = ["a; touch b", "$(touch c)", "d && touch e", "`touch f`", "g | touch h"]
    backend.submit(spec("literal", "touch", *tricks, working_dir=str(work)))
    wait_status(backend, "literal", "Succeeded")
    backend.submit(spec("sleeper", "sleep", "600", working_dir=str(work)))
    wait_status(backend, "sleeper", "Running")
    assert backend.exec("team-a", "sleeper", ["touch", "x; touch y", "$(touch z)"]) == 0
    made = {p.name for p in work.iterdir()}
    assert made == {*tricks, "x; touch y", "$(touch z)"}  # every word a file name; nothing run


@pytest.mark.e2e
def test_logs_and_exec_of_another_users_job_are_refused_through_the_cli(backend: LocalBackend,  # noqa: F811
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    backend.submit(spec("theirs", "sleep", "600", user="mallory"))  # the spec's user is not who submits
    wait_status(backend, "theirs", "Running")
    monkeypatch.setattr(os, "geteuid", lambda: 4242)  # an ordinary user, with no account name
    monkeypatch.setenv("USER", "root")  # claiming to be the owner changes nothing
    monkeypatch.setenv("LOGNAME", "root")
    backend.submit(spec("mine", "sh", "-c", "echo mine"))
    assert backend.get_job("team-a", "mine").user == "4242"
    wait_status(backend, "mine", "Succeeded")
    session = CliSession(backend=backend, config=CliConfig(project="team-a"))
    runner = CliRunner()
    for args in (["logs", "theirs"], ["exec", "theirs", "--", "cat", "/etc/hostname"]):
        result = runner.invoke(app, args, obj=session)
        assert result.exit_code == 2, result.output
        assert "belongs to root" in result.output and "Traceback" not in result.output
    assert runner.invoke(app, ["logs", "mine"], obj=session).output.strip() == "mine"
    with pytest.raises(UserError, match="only the user who submitted a job, or root"):
        list(backend.logs("team-a", "theirs"))
    monkeypatch.setattr(os, "geteuid", lambda: 0)  # root may look
    assert backend.exec("team-a", "theirs", ["true"]) == 0


# ---------------------------------------------------------------------------------- Kubernetes


ESCALATING = {"escalate", "bind", "impersonate", "*"}
# The only cluster-wide writes the controller's work needs: bind and evict pods, patch pods (its
# annotations), nodes (labels) and Jobs (suspend), record events and its layout ConfigMaps.
CLUSTER_WRITES = {("", "pods", "patch"), ("", "pods/binding", "create"), ("", "pods/eviction", "create"),
                  ("", "nodes", "patch"), ("", "configmaps", "create"), ("", "configmaps", "patch"),
                  ("", "events", "create"), ("", "events", "patch"), ("events.k8s.io", "events", "create"),
                  ("events.k8s.io", "events", "patch"), ("batch", "jobs", "patch"),
                  ("", "persistentvolumeclaims", "patch"),  # a WaitForFirstConsumer claim's selected node
                  *(("runai-lite.io", "allocations", verb) for verb in ("create", "patch", "delete"))}


def _grants(manifests: list[dict], kind: str) -> set[tuple[str, str, str]]:
    return {(group, resource, verb) for m in manifests if m["kind"] == kind for rule in m["rules"]
            for group in rule["apiGroups"] for resource in rule["resources"] for verb in rule["verbs"]}


@pytest.mark.parametrize("namespace", ["runai-lite", "gpu-system"])
def test_rendered_rbac_grants_no_secrets_no_escalation_and_only_needed_cluster_writes(namespace: str) -> None:
    manifests = render_manifests(release=Release(namespace=namespace))
    everything = _grants(manifests, "ClusterRole") | _grants(manifests, "Role")
    assert not {g for g in everything if g[1] in ("secrets", "*") or g[2] in ESCALATING or g[0] == "*"}
    assert not {g for g in everything if g[0] == "rbac.authorization.k8s.io"}  # cannot grant itself more
    remote_control = ("pods/exec", "pods/attach", "pods/portforward", "serviceaccounts/token")
    assert not {g for g in everything if g[1] in remote_control}
    cluster_writes = {g for g in _grants(manifests, "ClusterRole") if g[2] not in ("get", "list", "watch")}
    assert cluster_writes <= CLUSTER_WRITES
    for binding in (m for m in manifests if m["kind"] == "ClusterRoleBinding"):
        assert binding["roleRef"]["name"].startswith("runai-lite-")  # never cluster-admin or edit
    # nothing reads or mounts a Secret (an image pull secret is the kubelet's, named by the installer)
    assert not any(re.search(r"kind: Secret|secretKeyRef|secretName|\bsecrets\b", text) for text in chart_files().values())
