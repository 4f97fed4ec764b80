"""The seeds' dynamic-MIG quickstart, typed through the real CLI on the embedded default: a real
daemon, SQLite, job processes and a simulated A100-SXM4-40GB in a temporary RUNAI_LITE_HOME."""

from __future__ import annotations

import socket

import pytest

from runai_lite.gpu.catalog import default_catalog
from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture
from tests.metrics.scrape import get, samples, value

IMAGE = "gcr.io/run-ai-demo/quickstart-cuda"
TRAINING = ("mig1", "mig2", "mig3")
TEN_GB = 10 * 10**9


def _running(jobs, names):
    return all(jobs.get(n, {}).get("status") == "Running" for n in names)


def _instances(cli: Cli) -> list[dict]:
    (node,) = cli.nodes()
    (gpu,) = node["gpus"]
    assert gpu["simulated"] and gpu["dynamic_mig"] and gpu["model"] == "A100-SXM4-40GB"
    return gpu["mig_instances"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.e2e
def test_dynamic_mig_quickstart(cli: Cli):
    port = _free_port()
    cli.adm("local", "init", "--simulate", "A100-SXM4-40GB:1", "--metrics-address", f"127.0.0.1:{port}")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "2")
    assert "Project team-a has been set as default project" in cli.runai("config", "project", "team-a").stdout
    (node,) = cli.nodes()
    cli.adm("set", "node-role", "--dynamic-mig-enabled", node["name"])

    cli.runai("submit", "mig1", "-i", IMAGE, "--gpu-memory", "10GB", "--", "sleep", "600")
    cli.runai("submit", "mig2", "-i", IMAGE, "--mig-profile", "2g.10gb", "--", "sleep", "600")
    cli.runai("submit", "mig3", "-i", IMAGE, "--mig-profile", "2g.10gb", "--", "sleep", "600")

    # All three Running, each on its own 10GB partition.
    jobs = cli.wait_for("three training jobs Running", lambda j: _running(j, TRAINING))
    a100 = default_catalog().get("A100-SXM4-40GB")
    placements = set()
    for name in TRAINING:
        alloc = jobs[name]["allocation"]
        assert alloc["kind"] == "mig" and alloc["node"] == node["name"]
        assert a100.profile(alloc["mig_profile"]).memory_mib * 2**20 >= TEN_GB
        assert alloc["mig_profile"].endswith(".10gb")
        placements.add((alloc["mig_placement"]["start"], alloc["mig_placement"]["size"]))
    assert {jobs[n]["allocation"]["mig_profile"] for n in ("mig2", "mig3")} == {"2g.10gb"}
    assert len(placements) == 3
    used = [m for m in _instances(cli) if m["state"] == "used"]
    assert sorted(m["job"] for m in used) == [f"team-a/{n}" for n in TRAINING]
    listed = cli.runai("list").stdout
    assert listed.startswith("Showing jobs for project team-a")
    assert all(f"{n} " in listed for n in TRAINING) and listed.count("Running") == 3

    # The daemon's metrics show the three partitions and what they hold, the same in the file
    # `local metrics` prints and over HTTP.
    metrics = samples(cli.adm("local", "metrics").stdout)
    assert value(metrics, "runai_lite_gpu_capacity", mode="dynamic-mig") == 1
    assert metrics["runai_lite_mig_instances"] == {
        frozenset({("node", node["name"]), ("profile", p), ("state", "used")}): n for p, n in (("1g.10gb", 1), ("2g.10gb", 2))}
    assert value(metrics, "runai_lite_allocations", kind="mig") == 3
    assert value(metrics, "runai_lite_gpus_allocated", kind="mig") == pytest.approx(sum(
        jobs[n]["allocation"]["share"] for n in TRAINING))
    assert value(metrics, "runai_lite_mig_operations_total", operation="create") == 3
    assert value(metrics, "runai_lite_scheduling_pass_duration_seconds_count") >= 1
    status, served = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and samples(served)["runai_lite_mig_instances"] == metrics["runai_lite_mig_instances"]
    assert get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
    assert get(f"http://127.0.0.1:{port}/readyz") == (200, "ok\n")

    # An interactive job wanting 20GB preempts exactly one training job, whose partition goes.
    before = {n: jobs[n]["allocation"] for n in TRAINING}
    cli.runai("submit", "mig1-int", "-i", IMAGE, "--interactive", "--gpu-memory", "20G", "--", "sleep", "600")
    jobs = cli.wait_for("mig1-int Running and one training job back to Pending",
                        lambda j: _running(j, ["mig1-int"])
                        and sum(j[n]["status"] == "Pending" for n in TRAINING) == 1)
    assert jobs["mig1-int"]["allocation"]["mig_profile"] == "3g.20gb"
    assert jobs["mig1-int"]["type"] == "Interactive"
    (victim,) = [n for n in TRAINING if jobs[n]["status"] == "Pending"]
    survivors = [n for n in TRAINING if n != victim]
    assert all(jobs[n]["status"] == "Running" and jobs[n]["allocation"] == before[n] for n in survivors)
    events = [e["kind"] for e in cli.describe(victim)["events"]]
    assert "Preempted" in events
    instances = _instances(cli)
    assert before[victim]["mig_uuid"] not in {m["uuid"] for m in instances}
    new = jobs["mig1-int"]["allocation"]["mig_placement"]
    old = before[victim]["mig_placement"]
    assert new["start"] <= old["start"] < new["start"] + new["size"]  # the victim's slices were needed
    assert any(m["profile"] == "3g.20gb" and m["job"] == "team-a/mig1-int" for m in instances)
    metrics = samples(cli.adm("local", "metrics").stdout)
    assert value(metrics, "runai_lite_preemptions_total", project="team-a") == 1
    assert value(metrics, "runai_lite_mig_operations_total", operation="destroy") >= 1
    assert value(metrics, "runai_lite_pending_jobs") == 1

    # Deleting the interactive job lets the preempted job run again.
    cli.runai("delete", "job", "mig1-int")
    jobs = cli.wait_for(f"{victim} Running again", lambda j: _running(j, TRAINING))
    assert "mig1-int" not in jobs or jobs["mig1-int"]["status"] == "Deleted"
