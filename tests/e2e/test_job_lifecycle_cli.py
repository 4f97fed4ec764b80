"""A job's lifecycle through the real CLI and daemon on the embedded default: retries with
exponential backoff, no retry for a command that cannot run, the final BackoffLimitExceeded event,
attempt separators in `runai logs` and `--attempt N`, describe's attempts and last exit, and
`runai suspend` / `runai resume` (also across a daemon restart)."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.e2e.cli_harness import Cli, cli  # noqa: F401 - the fixture

BASE, CAP = 0.3, 0.5  # the first retry's delay and the cap, set small through the daemon's settings


def _setup(cli: Cli, simulate: str = "T4:1") -> None:
    cli.adm("local", "init", "--simulate", simulate, "--grace-seconds", "1", "--retry-backoff", str(BASE),
            "--retry-backoff-max", str(CAP))
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")


def _events(cli: Cli, name: str) -> list[dict]:
    return cli.describe(name)["events"]


@pytest.mark.e2e
def test_a_failing_job_is_retried_with_doubling_capped_backoff_then_stops_with_an_event(cli: Cli):
    _setup(cli)
    cli.runai("submit", "flaky", "-i", "img", "--backoff-limit", "3", "--", "sh", "-c", "echo run; exit 3")
    cli.wait_for("flaky Failed", lambda j: j["flaky"]["status"] == "Failed")
    described = cli.describe("flaky")
    history = described["attempt_history"]
    assert [a["number"] for a in history] == [1, 2, 3, 4]
    assert all(a["outcome"] == "failed" and a["exit_code"] == 3 for a in history)
    # each retry waited at least its backoff: 0.3 s, then 0.5 s (doubled, capped), then 0.5 s
    at = datetime.fromisoformat
    waits = [(at(later["started_at"]) - at(earlier["ended_at"])).total_seconds()
             for earlier, later in zip(history, history[1:])]
    assert [w >= d for w, d in zip(waits, (BASE, CAP, CAP))] == [True, True, True], waits
    retrying = [e["message"] for e in described["events"] if e["kind"] == "Retrying"]
    assert retrying == [f"retry 1 of 3 (--backoff-limit) in {BASE:g} s", f"retry 2 of 3 (--backoff-limit) in {CAP:g} s",
                        f"retry 3 of 3 (--backoff-limit) in {CAP:g} s"]
    assert described["events"][-1]["kind"] == "BackoffLimitExceeded"
    assert described["exit_code"] == 3 and described["attempts"] == 4

    shown = cli.runai("describe", "job", "flaky").stdout
    assert "ATTEMPTS:" in shown and "4 (4 failed; backoff limit 3)" in shown
    assert "EXIT CODE:" in shown

    logs = cli.runai("logs", "flaky").stdout.splitlines()
    assert logs == ["run", "--- attempt 2 (exit code 3) ---", "run", "--- attempt 3 (exit code 3) ---", "run",
                    "--- attempt 4 (exit code 3) ---", "run"]
    assert cli.runai("logs", "flaky", "--attempt", "2").stdout == "run\n"
    assert cli.runai("logs", "flaky", "--attempt", "4", "--tail", "1").stdout == "run\n"
    missing = cli.runai("logs", "flaky", "--attempt", "5", check=False)
    assert missing.returncode == 2 and "job flaky has no attempt 5: its attempts are 1 to 4" in missing.stderr
    assert "Traceback" not in missing.stderr
    followed = cli.runai("logs", "flaky", "--attempt", "1", "-f", check=False)
    assert followed.returncode == 2 and "cannot be followed" in followed.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(("command", "code", "why"), [
    (["no-such-command-here"], 127, "the command was not found"),
    (["/etc/hostname"], 126, "the command could not be executed"),
])
def test_a_command_that_cannot_run_fails_at_once_without_retries(cli: Cli, command, code, why):
    _setup(cli)
    cli.runai("submit", "broken", "-i", "img", "--backoff-limit", "5", "--", *command)
    cli.wait_for("broken Failed", lambda j: j["broken"]["status"] == "Failed")
    described = cli.describe("broken")
    assert described["attempts"] == 1 and described["exit_code"] == code
    kinds = [e["kind"] for e in described["events"]]
    assert "Retrying" not in kinds and "BackoffLimitExceeded" not in kinds
    not_retried = [e["message"] for e in described["events"] if e["kind"] == "NotRetried"]
    assert len(not_retried) == 1 and why in not_retried[0]


@pytest.mark.e2e
def test_a_pending_job_during_its_backoff_says_so_and_shows_its_last_attempt_not_an_exit_code(cli: Cli):
    cli.adm("local", "init", "--simulate", "T4:1", "--retry-backoff", "300")
    cli.adm("project", "create", "team-a", "--deserved-gpus", "1")
    cli.runai("config", "project", "team-a")
    cli.runai("submit", "slow", "-i", "img", "--backoff-limit", "2", "--", "sh", "-c", "exit 4")
    jobs = cli.wait_for("slow backing off", lambda j: "backing off" in (j["slow"]["pending_reason"] or ""))
    assert jobs["slow"]["status"] == "Pending" and jobs["slow"]["exit_code"] is None
    assert jobs["slow"]["pending_reason"] == "backing off 300 s after exit code 4 (retry 1 of 2)"
    shown = cli.runai("describe", "job", "slow").stdout
    assert "EXIT CODE" not in shown
    assert "LAST ATTEMPT:" in shown and "attempt 1: exit code 4" in shown
    assert "1 (1 failed; backoff limit 2)" in shown


def _gpu_holder(cli: Cli) -> str | None:
    return cli.nodes()[0]["gpus"][0]["whole_job"]


@pytest.mark.e2e
def test_suspend_frees_the_gpu_keeps_the_job_and_resume_queues_it_again(cli: Cli):
    _setup(cli)
    cli.runai("submit", "train", "-i", "img", "--gpu", "1", "--", "sh", "-c", "echo started; sleep 600")
    cli.wait_for("train Running", lambda j: j["train"]["status"] == "Running")
    cli.runai("submit", "waiting", "-i", "img", "--gpu", "1", "--", "sleep", "600")

    done = cli.runai("suspend", "train")
    assert "The job 'train' has been suspended" in done.stdout
    jobs = cli.wait_for("waiting Running", lambda j: j["waiting"]["status"] == "Running")
    assert jobs["train"]["status"] == "Suspended" and jobs["train"]["gpus_allocated"] == 0
    assert _gpu_holder(cli) == "team-a/waiting"
    assert "Suspended" in cli.runai("list").stdout
    described = cli.describe("train")
    assert [e["kind"] for e in described["events"]].count("Suspended") == 2  # requested, then done
    assert described["attempt_history"][0]["outcome"] == "suspended"

    again = cli.runai("suspend", "train", check=False)
    assert again.returncode == 2 and "already suspended" in again.stderr
    not_suspended = cli.runai("resume", "waiting", check=False)
    assert not_suspended.returncode == 2 and "job waiting is Running, not Suspended" in not_suspended.stderr

    # a restarted daemon does not start a suspended job again
    cli.adm("local", "stop")
    assert cli.jobs()["train"]["status"] == "Suspended"
    assert cli.runai("logs", "train").stdout == "started\n"

    cli.runai("suspend", "waiting")  # a pending job waiting for the GPU is set aside at once too
    assert cli.runai("resume", "train").stdout.startswith("The job 'train' has been resumed")
    cli.wait_for("train Running again", lambda j: j["train"]["status"] == "Running")
    described = cli.describe("train")
    assert described["attempts"] == 2 and "Resumed" in [e["kind"] for e in described["events"]]
    cli.wait_for("the second attempt's output", lambda j: cli.runai("logs", "train").stdout.count("started") == 2)
    assert cli.runai("logs", "train").stdout.splitlines() == ["started", "--- attempt 2 (suspended, then resumed) ---",
                                                               "started"]


@pytest.mark.e2e
def test_suspending_a_pending_job_and_a_finished_job(cli: Cli):
    _setup(cli)
    cli.runai("submit", "holder", "-i", "img", "--gpu", "1", "--", "sleep", "600")
    cli.wait_for("holder Running", lambda j: j["holder"]["status"] == "Running")
    cli.runai("submit", "big", "-i", "img", "--gpu", "1", "--", "sleep", "600")
    cli.runai("suspend", "big")
    assert cli.jobs()["big"]["status"] == "Suspended"
    cli.runai("resume", "big")
    assert cli.jobs()["big"]["status"] == "Pending"

    cli.runai("submit", "quick", "-i", "img", "--", "true")
    cli.wait_for("quick Succeeded", lambda j: j["quick"]["status"] == "Succeeded")
    finished = cli.runai("suspend", "quick", check=False)
    assert finished.returncode == 2 and "job quick has Succeeded: only a Pending or Running job can be suspended" \
        in finished.stderr
    missing = cli.runai("resume", "nope", check=False)
    assert missing.returncode == 2 and "job nope was not found" in missing.stderr
    listed = json.loads(cli.runai("list", "-o", "json").stdout)
    assert {j["name"]: j["status"] for j in listed} == {"holder": "Running", "big": "Pending", "quick": "Succeeded"}
