"""`runai submit`'s host, storage, network, placement and lifetime flags through the real CLI and
daemon on the embedded default (jobs as processes): what is scheduled, what is refused, what is
shown."""

from __future__ import annotations

import json

import pytest

from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture


def _setup(cli: Cli, *init: str) -> None:
    cli.adm("local", "init", "--simulate", "T4:1", *init)
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")


def _reason(cli: Cli, name: str) -> str:
    return cli.describe(name)["pending_reason"] or ""


@pytest.mark.e2e
def test_cpu_and_memory_requests_are_scheduled_on_the_declared_node(cli: Cli):
    _setup(cli, "--node-cpus", "2", "--node-memory", "4Gi")
    cli.runai("submit", "a", "-i", "img", "--cpu", "1.5", "--memory", "1Gi", "--", "sleep", "600")
    cli.wait_for("a Running", lambda j: j.get("a", {}).get("status") == "Running")
    cli.runai("submit", "b", "-i", "img", "--cpu", "1", "--", "sleep", "600")
    cli.runai("submit", "c", "-i", "img", "--memory", "3.5Gi", "--", "sleep", "600")
    cli.runai("submit", "d", "-i", "img", "--cpu", "0.5", "--memory", "3Gi", "--", "sleep", "600")
    jobs = cli.wait_for("d Running", lambda j: j.get("d", {}).get("status") == "Running")
    assert jobs["b"]["status"] == "Pending" and jobs["c"]["status"] == "Pending"
    assert "no schedulable node has 1 CPU cores free (most free: 0 cores on" in _reason(cli, "b")
    assert "3.5GiB of host memory free" in _reason(cli, "c")

    shown = cli.runai("describe", "job", "a").stdout
    assert "CPU:" in shown and "request 1.5" in shown and "request 1GiB" in shown
    cli.runai("delete", "job", "a")
    cli.wait_for("b Running", lambda j: j.get("b", {}).get("status") == "Running")


@pytest.mark.e2e
def test_node_type_waits_for_an_administrator_to_give_the_node_that_type(cli: Cli):
    _setup(cli)
    node = cli.nodes()[0]["name"]
    cli.runai("submit", "typed", "-i", "img", "--node-type", "dgx", "--", "sleep", "600")
    cli.wait_for("a reason", lambda j: "node type dgx" in (j.get("typed", {}).get("pending_reason") or ""))
    assert f"runai-adm set node-type {node} dgx" in _reason(cli, "typed")
    assert f"node {node} has no type" in _reason(cli, "typed")

    bad = cli.adm("set", "node-type", node, "not a type", check=False)
    assert bad.returncode == 2 and "invalid node type" in bad.stderr
    assert cli.adm("set", "node-type", "elsewhere", "dgx", check=False).returncode == 2
    cli.adm("set", "node-type", node, "dgx")
    cli.wait_for("typed Running", lambda j: j["typed"]["status"] == "Running")
    assert "NODE TYPE:" in cli.runai("describe", "job", "typed").stdout
    cli.adm("remove", "node-type", node)
    cli.runai("submit", "later", "-i", "img", "--node-type", "dgx", "--", "true")
    cli.wait_for("a reason", lambda j: "has no type" in (j.get("later", {}).get("pending_reason") or ""))


@pytest.mark.e2e
def test_labels_ports_and_large_shm_on_a_process_job(cli: Cli):
    _setup(cli)
    done = cli.runai("submit", "web", "-i", "img", "-l", "team=vision", "-l", "example.com/owner=ana",
                     "--port", "8080", "--large-shm", "--", "sleep", "600")
    assert "Note: --large-shm does not apply to a process" in done.stderr
    described = cli.describe("web")
    assert described["options"]["labels"] == {"team": "vision", "example.com/owner": "ana"}
    assert described["options"]["ports"] == [{"container_port": 8080, "host_port": None}]
    assert described["options"]["large_shm"] is True
    assert any(e["kind"] == "NotApplicable" for e in described["events"])
    shown = cli.runai("describe", "job", "web").stdout
    assert "LABELS:" in shown and "team=vision" in shown and "PORTS:" in shown


@pytest.mark.e2e
@pytest.mark.parametrize(("args", "why"), [
    (["-v", "/tmp:/data"], "-v needs a container"),
    (["--pvc", ":1Gi:/data"], "--pvc needs Kubernetes"),
    (["--pvc", "claim:/data"], "--pvc needs Kubernetes"),
    (["--port", "80", "--service-type", "nodeport"], "--service-type needs Kubernetes"),
    (["--completions", "2"], "need Kubernetes"),
])
def test_what_a_process_job_cannot_have_is_refused_and_nothing_is_stored(cli: Cli, args, why):
    _setup(cli)
    result = cli.runai("submit", "no", "-i", "img", *args, "--", "true", check=False)
    assert result.returncode == 2 and why in result.stderr and "Traceback" not in result.stderr
    assert json.loads(cli.runai("list", "-o", "json").stdout) == []
