"""Two real unix users share one machine-wide daemon: one set of GPUs, each user's jobs their own.

Alice and Bob run the real `runai` as themselves (their own uid, their own shell environment and
directory); the daemon learns who they are from the kernel."""

from __future__ import annotations

import subprocess

import pytest

from runai_lite.backends.local import LocalBackend

from .conftest import User, needs_root, wait_for

pytestmark = [pytest.mark.e2e, needs_root]


def _running(user: User, name: str) -> bool:
    return user.jobs().get(name, {}).get("status") == "Running"


def test_two_users_asking_for_both_gpus_get_them_one_at_a_time(system_daemon: LocalBackend, make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    for user in (alice, bob):
        done = user.runai("submit", f"{user.name}-train", "-p", "team-a", "-i", "img", "--gpu", "2", "--",
                          "sleep", "600", check=True)
        assert "submitted successfully" in done.stdout
    jobs = wait_for(lambda: (j := alice.jobs()) and any(x["status"] == "Running" for x in j.values()) and j,
                    "one of the two jobs to run")
    statuses = sorted(j["status"] for j in jobs.values())
    assert statuses == ["Pending", "Running"]  # one machine, one set of GPUs: never both
    assert {j["user"] for j in jobs.values()} == {alice.name, bob.name}
    table = bob.runai("list", "-A", check=True).stdout
    assert "USER" in table and alice.name in table and bob.name in table


def test_another_users_job_is_refused_to_logs_exec_and_delete_and_left_alone(system_daemon: LocalBackend,
                                                                             make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    alice.runai("submit", "mine", "-p", "team-a", "-i", "img", "--gpu", "1", "--", "sh", "-c",
                "echo alice-was-here; sleep 600", check=True)
    wait_for(lambda: _running(alice, "mine"), "alice's job to run")
    before = system_daemon.get_job("team-a", "mine")
    for args in (["logs", "-p", "team-a", "mine"], ["exec", "-p", "team-a", "mine", "--", "id"],
                 ["delete", "job", "-p", "team-a", "mine"], ["suspend", "-p", "team-a", "mine"],
                 ["resume", "-p", "team-a", "mine"], ["logs", "-p", "team-a", "mine", "--attempt", "1"],
                 ["port-forward", "-p", "team-a", "mine", "--port", "8080"]):
        done = bob.runai(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert f"job mine belongs to {alice.name}; you are {bob.name}" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    # claiming to be alice in every variable a user controls changes nothing: the kernel says who
    claimed = bob.runai("delete", "job", "-p", "team-a", "mine", env={"USER": alice.name, "LOGNAME": alice.name,
                                                                     "SUDO_USER": alice.name})
    assert claimed.returncode == 2 and "belongs to" in claimed.stderr
    after = system_daemon.get_job("team-a", "mine")
    assert after.status.value == "Running" and after.started_at == before.started_at
    assert after.attempts == before.attempts
    assert not [e for e in after.events if e.kind in ("Deleted", "Suspended")]
    # the owner may; so may root
    assert "alice-was-here" in alice.runai("logs", "-p", "team-a", "mine", check=True).stdout
    assert alice.runai("exec", "-p", "team-a", "mine", "--", "true").returncode == 0
    assert "has been suspended" in alice.runai("suspend", "-p", "team-a", "mine", check=True).stdout
    assert system_daemon.get_job("team-a", "mine").status.value == "Suspended"
    assert "has been resumed" in alice.runai("resume", "-p", "team-a", "mine", check=True).stdout
    assert system_daemon.delete_jobs("team-a", ["mine"]) == ["mine"]


def test_only_root_creates_and_deletes_projects_and_quotas_apply_across_users(system_daemon: LocalBackend,
                                                                             make_user) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    refused = alice.run("runai-adm", "project", "create", "alices-own", "--deserved-gpus", "2")
    assert refused.returncode == 2 and "only root can create projects" in refused.stderr
    refused = alice.run("runai-adm", "project", "delete", "team-a")
    assert refused.returncode == 2 and "only root can delete projects" in refused.stderr
    assert [p.name for p in system_daemon.list_projects()] == ["team-a"]
    system_daemon.create_project("team-b", 0)
    # team-a deserves both GPUs: bob's interactive team-b job waits behind alice's, not beside it
    alice.runai("submit", "a", "-p", "team-a", "-i", "img", "--gpu", "2", "--", "sleep", "600", check=True)
    wait_for(lambda: _running(alice, "a"), "alice's job to run")
    bob.runai("submit", "b", "-p", "team-b", "-i", "img", "--gpu", "1", "--interactive", "--", "sleep", "600",
              check=True)
    wait_for(lambda: bob.jobs()["b"].get("pending_reason"), "bob's job to be considered")
    assert bob.jobs()["b"]["status"] == "Pending" and alice.jobs()["a"]["status"] == "Running"


def test_a_job_runs_as_its_submitter_in_the_submit_directory_with_the_submit_environment(
        system_daemon: LocalBackend, make_user) -> None:
    alice = make_user("alice")
    workdir = alice.home / "experiment"
    subprocess.run(["mkdir", str(workdir)], user=alice.uid, group=alice.gid, check=True)
    alice.runai("submit", "where", "-p", "team-a", "-i", "img", "--", "sh", "-c",
                'echo "uid=$(id -u) dir=$(pwd) var=$ONLY_IN_ALICES_SHELL"', cwd=workdir,
                env={"ONLY_IN_ALICES_SHELL": "from-her-shell"}, check=True)
    wait_for(lambda: alice.jobs()["where"]["status"] in ("Succeeded", "Failed"), "alice's job to finish")
    out = alice.runai("logs", "-p", "team-a", "where", check=True).stdout
    assert f"uid={alice.uid} dir={workdir} var=from-her-shell" in out, out
