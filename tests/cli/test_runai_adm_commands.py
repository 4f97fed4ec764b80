"""`runai-adm` against an in-memory backend, and its pure parts."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from runai_lite.cli.config import CliConfig
from runai_lite.cli.runai_adm import app
from runai_lite.cli.session import CliSession
from tests.cli import records
from tests.cli.fake_backend import FakeBackend

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("RUNAI_LITE_HOME", str(tmp_path / "home"))


def invoke(backend: FakeBackend, *args: str):
    return runner.invoke(app, list(args), obj=CliSession(backend=backend, config=CliConfig(project="team-a")))


def test_set_and_remove_dynamic_mig_role():
    backend = FakeBackend(nodes=records.nodes())
    result = invoke(backend, "set", "node-role", "--dynamic-mig-enabled", "host-1")
    assert result.exit_code == 0 and "dynamic-MIG enabled" in result.stdout
    assert backend.dynamic_mig == {"host-1": True}
    assert invoke(backend, "remove", "node-role", "--dynamic-mig-enabled", "host-1").exit_code == 0
    assert backend.dynamic_mig == {"host-1": False}


def test_node_role_mistakes():
    backend = FakeBackend(nodes=records.nodes())
    result = invoke(backend, "set", "node-role", "host-1")
    assert result.exit_code == 2 and "--dynamic-mig-enabled" in result.stderr
    result = invoke(backend, "set", "node-role", "--dynamic-mig-enabled", "ghost")
    assert result.exit_code == 2 and "ghost" in result.stderr
    assert backend.dynamic_mig == {}


def test_project_create_list_delete():
    backend = FakeBackend(projects=[])
    result = invoke(backend, "project", "create", "team-a", "--deserved-gpus", "2")
    assert result.exit_code == 0 and "team-a created with 2 deserved GPUs" in result.stdout
    data = json.loads(invoke(backend, "project", "list", "-o", "json").stdout)
    assert data == [{"name": "team-a", "deserved_gpus": 2.0, "allocated_gpus": 0.0, "running": 0, "pending": 0}]
    assert "team-a (default)" in invoke(backend, "project", "list").stdout
    assert invoke(backend, "project", "delete", "team-a").exit_code == 0
    assert backend.projects == {}


@pytest.mark.parametrize(("args", "message"), [
    (["project", "create", "Team_A"], "invalid project name"),
    (["project", "create", "team-x", "--deserved-gpus", "-1"], "--deserved-gpus"),
    (["project", "delete", "ghost"], "ghost"),
])
def test_project_mistakes_exit_2(args, message):
    backend = FakeBackend(projects=[])
    result = invoke(backend, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert backend.projects == {}


def test_local_init_rejects_bad_input_before_touching_anything(tmp_path):
    result = runner.invoke(app, ["local", "init", "--simulate", "Z9000:1"])
    assert result.exit_code == 2 and "unknown GPU model" in result.stderr
    result = runner.invoke(app, ["local", "init", "--simulate", "T4:1", "--enforcement", "magic"])
    assert result.exit_code == 2 and "hami-core" in result.stderr
    assert not (tmp_path / "home" / "state.db").exists()


def test_install_print_renders_the_manifests_with_values():
    result = runner.invoke(app, ["install", "--print", "-n", "gpu-system", "--name", "gpu", "--set",
                                 "controller.replicas=2", "--set", "controller.resources.requests.cpu=1",
                                 "--set", "image.tag=dev"])
    assert result.exit_code == 0, result.output
    documents = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"] for d in documents}
    assert {"Namespace", "Deployment", "DaemonSet", "ClusterRole"} <= kinds
    assert documents[0]["kind"] == "Namespace" and documents[0]["metadata"]["name"] == "gpu-system"
    [deployment] = [d for d in documents if d["kind"] == "Deployment"]
    assert deployment["metadata"]["name"] == "gpu-runai-lite-controller"
    assert deployment["metadata"]["namespace"] == "gpu-system" and deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/runai-lite/runai-lite:dev"
    # a --set inside a map keeps the rest of the map, as Helm merges values
    assert container["resources"] == {"requests": {"cpu": 1, "memory": "128Mi"}, "limits": {"memory": "512Mi"}}


def test_install_mistakes():
    assert runner.invoke(app, ["install"]).exit_code == 2
    for values, says in ((["--set", "bogus=1"], "invalid --set bogus"),
                         (["--set", "controller.replicas=zero"], "invalid --set controller.replicas"),
                         (["--set", "agent.driver=cuda"], "invalid --set agent.driver"),
                         (["--set", "novalue"], "use --set PATH=VALUE"), (["--set", "a..b=1"], "use --set PATH=VALUE"),
                         (["-n", "Not_A_Namespace"], "invalid namespace")):
        result = runner.invoke(app, ["install", "--print", *values])
        assert result.exit_code == 2 and says in result.stderr and "Traceback" not in result.output, values


def test_local_status_on_a_fresh_home_says_stopped(tmp_path):
    result = runner.invoke(app, ["local", "status", "-o", "json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["running"] is False and status["home"] == str(tmp_path / "home")
    text = runner.invoke(app, ["local", "status"]).stdout
    assert "Daemon:      stopped" in text and "NVML" in text
