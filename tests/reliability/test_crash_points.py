"""Crash safety (issue 6 item 1), the CI-sized part: the embedded daemon SIGKILLs itself at each
named step of applying a plan, once per step, under a workload that passes every step; a fresh
daemon then carries on, and nothing is lost, duplicated, leaked or double-booked. The 200-run
randomised campaign is `python -m benchmarks.crash_harness` (figures in docs/reliability.md)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from benchmarks.crash_harness import plan_runs, run_one, scripted_workload, workload
from runai_lite.backends.local import crashpoints, daemon_stop
from runai_lite.backends.local.checks import CHECK_ENV
from runai_lite.backends.local.crashpoints import CRASH_ENV, MARK_ENV, POINTS
from tests.local.conftest import kill_everything, make_backend, spec, wait_status

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("point", list(POINTS))
def test_a_daemon_killed_at_each_step_loses_nothing(point: str, tmp_path: Path) -> None:
    outcome = run_one(seed=7, point=point, count=1, workdir=tmp_path, steps=scripted_workload())
    assert outcome.crashed, f"the workload never reached {point}"
    assert outcome.problems == []
    assert outcome.jobs == 3


def test_crash_specs_are_parsed_strictly() -> None:
    assert crashpoints.parse(None) is None
    assert crashpoints.parse("settled") == ("settled", 1)
    assert crashpoints.parse("mig-reconciled:3") == ("mig-reconciled", 3)
    for bad in ("nowhere", "settled:0", "settled:x"):
        with pytest.raises(ValueError):
            crashpoints.parse(bad)


def test_the_campaign_covers_every_point_and_every_delete_follows_its_submit() -> None:
    runs = plan_runs(210, seed=1)
    assert {point for _, point, _ in runs} == set(POINTS)
    assert len({seed for seed, _, _ in runs}) == 210
    for seed in range(30):
        steps = workload(random.Random(seed))
        deletes = [i for i, (kind, _) in enumerate(steps) if kind == "delete"]
        assert len(deletes) == 1
        victim = steps[deletes[0]][1]
        assert ("submit", victim) in steps[:deletes[0]]


def test_a_daemon_killed_in_its_first_cycle_is_restarted_by_the_command_that_started_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv(CHECK_ENV, "1")
    backend = make_backend(home)
    daemon_stop(home)
    with backend.store.write() as conn:  # work waiting for the next daemon's first cycle
        backend.store.insert_job(conn, spec("waiting", "sleep", "600"), "someone", "process", time.time())
    monkeypatch.setenv(CRASH_ENV, "plan-recorded")
    monkeypatch.setenv(MARK_ENV, str(home / "crashed"))
    try:
        assert [j.name for j in backend.list_jobs("team-a")] == ["waiting"]  # no "could not start"
        assert (home / "crashed").exists()
        wait_status(backend, "waiting", "Running")
    finally:
        backend.close()
        kill_everything(home)
    assert not (home / "invariants.log").exists()
