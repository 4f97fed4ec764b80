"""Issue 6 item 3 end to end: a real embedded daemon on a simulated A100 whose driver injects NVML
errors on create and destroy. Jobs wait as Pending with the reason, the daemon retries with
backoff and never crashes, and no partition leaks (the daemon's invariant checker runs after
every cycle and the `home` fixture fails the test if it ever complained)."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_status
from runai_lite.gpu.simulated import FAULTS_FILE, SimulatedDriver
from runai_lite.model import GpuRequest, JobType
from tests.local.conftest import home, make_backend, spec, wait_for, wait_status  # noqa: F401 - `home` is a fixture

pytestmark = pytest.mark.e2e


def _partitions(backend: LocalBackend) -> list[tuple[str, int, str]]:
    """What the daemon shows: (profile, start, used/idle/...) on the A100."""
    return sorted((p.profile, p.start, p.state) for p in backend.list_nodes()[0].gpus[0].mig_instances)


@pytest.fixture
def mig(home: Path):  # noqa: F811 - the imported fixture
    backend = make_backend(home)
    backend.set_dynamic_mig(backend.store.config("node"), True)
    yield backend, SimulatedDriver(home, faults="")
    backend.close()


def test_failed_creates_keep_the_job_pending_with_a_reason_then_it_runs(mig, home: Path) -> None:  # noqa: F811
    backend, driver = mig
    driver.set_faults("create:timeout:x2,create:insufficient-resources:x1")
    injected = driver.faults()
    backend.submit(spec("patient", "sleep", "600", request=GpuRequest(mig_profile="3g.20gb")))
    wait_for(lambda: driver.faults() != injected, what="a first failed create")
    # not Failed: it waits, and its reason carries the driver's error rather than a bare "creating"
    wait_for(lambda: "waiting for MIG partition 3g.20gb" in (backend.get_job("team-a", "patient").pending_reason or ""),
             what="the driver's error in the pending reason")
    waiting = backend.get_job("team-a", "patient")
    assert waiting.status.value == "Pending" and "retrying" in (waiting.pending_reason or "")
    wait_status(backend, "patient", "Running", timeout=30)
    assert driver.faults() == ""  # every injected failure was met
    assert [(p, s) for p, _, s in _partitions(backend)] == [("3g.20gb", "used")]
    assert daemon_status(home).running  # it never crashed on the errors


def test_a_create_that_took_effect_but_reported_an_error_leaks_nothing(mig, home: Path) -> None:  # noqa: F811
    backend, driver = mig
    (home / FAULTS_FILE).write_text("create:unknown:x1:after")  # a shell harness's way in
    backend.submit(spec("lost-answer", "sleep", "600", request=GpuRequest(mig_profile="2g.10gb")))
    wait_status(backend, "lost-answer", "Running", timeout=30)
    job = backend.get_job("team-a", "lost-answer")
    on_gpu = driver.mig_instances(0)
    assert [(m.profile, m.uuid) for m in on_gpu] == [("2g.10gb", job.allocation.mig_uuid)]


def test_failed_destroys_during_preemption_are_retried_until_the_interactive_job_runs(mig) -> None:
    backend, driver = mig
    backend.submit(spec("trainer", "sleep", "600", request=GpuRequest(mig_profile="7g.40gb")))
    wait_status(backend, "trainer", "Running")
    driver.set_faults("destroy:in-use:x2,destroy:timeout:x1")
    backend.submit(spec("notebook", "sleep", "600", request=GpuRequest(mig_profile="3g.20gb"), type=JobType.INTERACTIVE))
    wait_status(backend, "notebook", "Running", timeout=40)
    wait_status(backend, "trainer", "Pending")  # requeued, not lost
    assert driver.faults() == ""
    assert ("3g.20gb", "used") in [(p, s) for p, _, s in _partitions(backend)]
    assert "7g.40gb" not in [m.profile for m in driver.mig_instances(0)]
