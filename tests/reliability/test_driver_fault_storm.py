"""Driver faults (issue 6 item 3): a real daemon on a simulated A100 whose driver fails creates
and destroys with NVML errors (two of them after the call took effect: the lost-answer case).
Jobs churn through partitions; every injected failure is met, every job still ends as it
should, the same daemon process survives all of it, and its consistency check (after every cycle)
never finds a leaked or double-used partition.

(tests/agent/test_daemon_under_driver_faults.py follows single faults step by step.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_status
from runai_lite.backends.local.daemon.mig import RetryClock
from runai_lite.backends.local.store import PartitionState
from runai_lite.gpu.simulated import SimulatedDriver
from runai_lite.model import GpuRequest
from tests.local.conftest import home, mig_backend, spec, wait_for  # noqa: F401 - fixtures

# With tests/agent/test_daemon_under_driver_faults.py (create: timeout, insufficient-resources;
# destroy: in-use, timeout), every NVML error on both operations; each failure backs the GPU off
# (0.5 s, 1 s, 2 s, ...), so the set here stays small enough to keep the test short.
FAULTS = "create:in-use:x1,create:unknown:x1:after,destroy:insufficient-resources:x1,destroy:unknown:x1:after"


@pytest.mark.e2e
def test_nvml_errors_on_create_and_destroy_are_survived_and_leak_nothing(
        mig_backend: LocalBackend, home: Path) -> None:  # noqa: F811
    driver = SimulatedDriver(home, faults="")
    driver.set_faults(FAULTS)
    daemon_pid = daemon_status(home).pid
    profiles = ["3g.20gb", "4g.20gb", "7g.40gb", "2g.10gb"]
    for number, profile in enumerate(profiles):
        mig_backend.submit(spec(f"churn-{number}", "sleep", "0.3", request=GpuRequest(mig_profile=profile)))
    done = lambda: all(j.status.value == "Succeeded" for j in mig_backend.list_jobs("team-a"))  # noqa: E731
    wait_for(done, timeout=90, what="every job to run and succeed despite the faults")
    assert driver.faults() == ""  # each injected failure was met
    assert daemon_status(home).pid == daemon_pid  # one daemon throughout: it never crashed
    events = [e for j in mig_backend.list_jobs("team-a") for e in mig_backend.events("team-a", j.name)]
    assert not [e for e in events if e.kind == "Failed"]
    wait_for(lambda: mig_backend.store.mig_layout(mig_backend.store.config("node")) == []
             or all(p.state == PartitionState.READY for p in mig_backend.store.mig_layout(mig_backend.store.config("node"))),
             what="no partition change left pending")
    known = {(p.start, p.profile) for p in mig_backend.store.mig_layout(mig_backend.store.config("node"))}
    assert {(m.start, m.profile) for m in driver.mig_instances(0)} <= known  # nothing leaked


def test_failed_driver_calls_are_retried_with_exponential_backoff_capped_at_30_s() -> None:
    clock = RetryClock()
    key = ("mig", 0)
    assert clock.ready(key, 0.0)
    waits, now = [], 0.0
    for _ in range(10):
        clock.failed(key, now)
        due = clock.delays[key][0]
        assert not clock.ready(key, due - 0.01) and clock.ready(key, due)
        waits.append(round(due - now, 2))
        now = due
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert clock.ready(("mig", 1), now)  # per GPU: another GPU is not held back
    clock.succeeded(key)
    assert clock.ready(key, now)
