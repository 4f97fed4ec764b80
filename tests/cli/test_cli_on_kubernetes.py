"""`runai config cluster CONTEXT` switches the CLI to Kubernetes: the same commands then work
through `KubeBackend` against an HTTP Kubernetes API emulator, with the real `kubernetes` client."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from runai_lite.cli import runai, runai_adm
from tests.kube_emulator.fixtures import kube_emulator, kubeconfig  # noqa: F401

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))


def ok(app, *args: str) -> str:
    result = runner.invoke(app, list(args))  # no obj: a fresh session reads the stored settings
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_cli_drives_a_cluster_chosen_by_context(kubeconfig, kube_emulator):
    from runai_lite.backends.kube import render_manifests
    from runai_lite.backends.kube.node_agent import OPERATOR_NAMESPACE
    from tests.kube.world import RESOURCES

    kube_emulator.create_namespace(OPERATOR_NAMESPACE)  # the GPU Operator's, where the agent has a Role
    for manifest in render_manifests(create_namespace=True):  # runai-lite installed, no controller running
        kube_emulator.create(RESOURCES[manifest["kind"]], manifest)
    assert "Kubernetes context emulator" in ok(runai.app, "config", "cluster", "emulator")
    ok(runai_adm.app, "project", "create", "team-a", "--deserved-gpus", "1")
    ok(runai.app, "config", "project", "team-a")
    ok(runai.app, "submit", "frac", "-i", "busybox", "--gpu", "0.5", "--", "sleep", "60")

    (job,) = json.loads(ok(runai.app, "list", "-o", "json"))
    assert (job["name"], job["project"], job["type"], job["status"]) == ("frac", "team-a", "Train", "Pending")
    assert job["gpus_requested"] == 0.5 and job["requested"] == "0.5" and job["allocation"] is None
    assert "frac" in ok(runai.app, "list")
    assert json.loads(ok(runai_adm.app, "project", "list", "-o", "json"))[0]["name"] == "team-a"

    mistake = runner.invoke(runai.app, ["submit", "frac", "-i", "busybox", "--", "true"])
    assert mistake.exit_code == 2 and "already exists" in mistake.stderr

    assert "The job 'frac' has been deleted" in ok(runai.app, "delete", "job", "frac")
    ok(runai.app, "config", "cluster", "local")


def test_a_request_no_node_could_hold_is_accepted_with_a_warning(kubeconfig, kube_emulator, tmp_path):
    from tests.kube.world import World

    ok(runai.app, "config", "cluster", "emulator")
    ok(runai_adm.app, "project", "create", "team-a", "--deserved-gpus", "1")
    World(kube_emulator, tmp_path).add_gpu_node("t4-node", 1)
    done = runner.invoke(runai.app, ["submit", "big", "-p", "team-a", "-i", "busybox", "--gpu", "2", "--", "true"])
    assert done.exit_code == 0, done.output
    assert done.stderr == ("Warning: --gpu 2 asks for more GPUs than any node has: t4-node has 1; it stays pending "
                           "until such a node joins (ask for --gpu 1 or fewer)\n")
    assert [j["name"] for j in json.loads(ok(runai.app, "list", "-p", "team-a", "-o", "json"))] == ["big"]
    fits = runner.invoke(runai.app, ["submit", "cpu", "-p", "team-a", "-i", "busybox", "--", "true"])
    assert fits.exit_code == 0 and fits.stderr == ""
    ok(runai.app, "config", "cluster", "local")
