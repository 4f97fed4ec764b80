"""A fraction job through the real CLI on the embedded default: its device reaches its process,
`runai logs` shows its output, `runai exec` runs in its environment, a mistake changes nothing."""

from __future__ import annotations

import time

import pytest

from tests.e2e.cli_harness import WAIT_SECONDS, Cli, cli  # noqa: F401 - the fixture


@pytest.mark.e2e
def test_fraction_job_logs_exec_and_mistakes(cli: Cli):
    cli.adm("local", "init", "--simulate", "T4:1")
    cli.adm("project", "create", "team-b", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-b")

    script = 'echo "device=$NVIDIA_VISIBLE_DEVICES portion=$GPU_PORTION"; echo ready; exec sleep 600'
    cli.runai("submit", "frac", "-i", "python:3.11", "--gpu", "0.5", "-e", "GREETING=hi", "--", "sh", "-c", script)
    jobs = cli.wait_for("frac Running", lambda j: j.get("frac", {}).get("status") == "Running")
    alloc = jobs["frac"]["allocation"]
    assert alloc["kind"] == "fraction" and alloc["share"] == 0.5 and jobs["frac"]["gpus_allocated"] == 0.5

    deadline = time.monotonic() + WAIT_SECONDS
    while "ready" not in (logs := cli.runai("logs", "frac").stdout) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert f"device={alloc['gpu_uuid']} portion=0.5" in logs
    assert cli.runai("logs", "frac", "--tail", "1").stdout == "ready\n"

    done = cli.runai("exec", "frac", "--", "sh", "-c", 'echo "$GREETING $RUNAI_JOB_NAME $CUDA_VISIBLE_DEVICES"; exit 7',
                     check=False)
    assert done.returncode == 7 and done.stdout.strip() == f"hi frac {alloc['gpu_uuid']}"

    (node,) = cli.nodes()
    assert node["gpus"][0]["fractions"] == [{"job": "team-b/frac", "share": 0.5}]
    drawn = cli.runai("top", "node").stdout
    assert "[simulated]" in drawn and "team-b/frac" in drawn

    # Mistakes: exit 2, a message on stderr, nothing submitted.
    for args in (["submit", "bad", "-i", "img", "--gpu", "0.5", "--gpu-memory", "4G", "--", "true"],
                 ["submit", "bad", "-i", "img", "--mig-profile", "2g.10gb", "-p", "nobody", "--", "true"],
                 ["describe", "job", "nothing"]):
        result = cli.runai(*args, check=False)
        assert result.returncode == 2 and result.stderr.startswith("Error: ") and "Traceback" not in result.stderr
    assert list(cli.jobs()) == ["frac"]
