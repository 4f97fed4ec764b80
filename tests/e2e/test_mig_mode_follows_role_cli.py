"""A simulated GPU that nobody put in MIG mode, through the real CLI and daemon: requests it could
never hold are refused at submit; it runs fractions
and whole GPUs; making its node dynamic-MIG switches MIG mode on (refused while fractions hold
it), removing the role switches it off again once no partition is in use; a GPU declared
`:mig-off` stays an ordinary GPU beside a dynamic-MIG one of the same model."""

from __future__ import annotations

import pytest

from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture


def _gpus(cli: Cli) -> list[dict]:
    (node,) = cli.nodes()
    return node["gpus"]


def _status(name: str, status: str):
    return lambda jobs: jobs.get(name, {}).get("status") == status


@pytest.mark.e2e
def test_mig_mode_follows_the_dynamic_mig_role(cli: Cli):
    cli.adm("local", "init", "--simulate", "A100-SXM4-40GB:1")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")
    assert [(g["mig_enabled"], g["dynamic_mig"]) for g in _gpus(cli)] == [(False, False)]

    # What no GPU here could ever hold is refused at once, naming the largest it could, and not stored.
    for flags, message in ((["--gpu", "2"], "--gpu 2 asks for more GPUs than any node has: "),
                           (["--gpu-memory", "100G"], "--gpu-memory 100GB is more than any GPU here holds: the "
                                                      "largest, A100-SXM4-40GB on "),
                           (["--mig-profile", "1g.20gb"], "no GPU here offers MIG profile 1g.20gb (the largest here "
                                                          "is 7g.40gb)")):
        refused = cli.runai("submit", "never", "-i", "busybox", *flags, "--", "true", check=False)
        assert refused.returncode == 2 and refused.stderr.startswith(f"Error: {message}"), refused.stderr
        assert "Hint: " in refused.stderr and "Traceback" not in refused.stderr
    assert cli.jobs() == {}

    cli.runai("submit", "f1", "-i", "busybox", "--gpu", "0.5", "--", "sleep", "600")
    jobs = cli.wait_for("f1 Running", _status("f1", "Running"))
    assert jobs["f1"]["allocation"]["kind"] == "fraction"
    node = cli.nodes()[0]["name"]
    refused = cli.adm("set", "node-role", "--dynamic-mig-enabled", node, check=False)
    assert refused.returncode == 2 and "team-a/f1" in refused.stderr
    assert [(g["mig_enabled"], g["dynamic_mig"]) for g in _gpus(cli)] == [(False, False)]  # nothing changed
    cli.runai("delete", "job", "f1")

    cli.adm("set", "node-role", "--dynamic-mig-enabled", node)
    assert [(g["mig_enabled"], g["dynamic_mig"]) for g in _gpus(cli)] == [(True, True)]
    cli.runai("submit", "m1", "-i", "busybox", "--gpu-memory", "10GB", "--", "sleep", "600")
    jobs = cli.wait_for("m1 Running", _status("m1", "Running"))
    assert jobs["m1"]["allocation"]["mig_profile"] == "1g.10gb"
    refused = cli.adm("remove", "node-role", "--dynamic-mig-enabled", node, check=False)
    assert refused.returncode == 2 and "strand running MIG jobs: team-a/m1" in refused.stderr
    cli.runai("delete", "job", "m1")
    assert [m["state"] for m in _gpus(cli)[0]["mig_instances"]] == ["idle"]  # kept lazily

    cli.adm("remove", "node-role", "--dynamic-mig-enabled", node)
    assert [(g["mig_enabled"], g["dynamic_mig"], g["mig_instances"]) for g in _gpus(cli)] == [(False, False, [])]
    cli.runai("submit", "w1", "-i", "busybox", "--gpu", "1", "--", "sleep", "600")
    jobs = cli.wait_for("w1 Running", _status("w1", "Running"))
    assert jobs["w1"]["allocation"]["kind"] == "gpu"


@pytest.mark.e2e
def test_one_node_holds_a_mig_gpu_and_a_mig_off_gpu_of_the_same_model(cli: Cli):
    cli.adm("local", "init", "--simulate", "A100-SXM4-40GB:1,A100-SXM4-40GB:1:mig-off")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "2")
    cli.runai("config", "project", "team-a")
    node = cli.nodes()[0]["name"]
    cli.adm("set", "node-role", "--dynamic-mig-enabled", node)
    assert [(g["mig_enabled"], g["dynamic_mig"]) for g in _gpus(cli)] == [(True, True), (False, False)]

    cli.runai("submit", "mig", "-i", "busybox", "--mig-profile", "3g.20gb", "--", "sleep", "600")
    cli.runai("submit", "frac", "-i", "busybox", "--gpu", "0.5", "--", "sleep", "600")
    jobs = cli.wait_for("both Running", lambda j: all(j.get(n, {}).get("status") == "Running" for n in ("mig", "frac")))
    assert (jobs["mig"]["allocation"]["gpu_index"], jobs["frac"]["allocation"]["gpu_index"]) == (0, 1)
