"""A preemption hands a resource over only once the victim has stopped: the consistency check
(run after every daemon cycle, see the `home` fixture) fails the test if the new job's process
and the victim's ever run on the same GPU or MIG partition at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.model import GpuRequest, JobType
from tests.local.conftest import backend, home, mig_backend, spec, wait_status  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e

STUBBORN = ("sh", "-c", "trap '' TERM; sleep 600 & wait; sleep 600")  # outlives SIGTERM until SIGKILL


def test_an_interactive_job_waits_for_its_victim_on_the_same_mig_partition(mig_backend: LocalBackend,  # noqa: F811
                                                                           home: Path) -> None:  # noqa: F811
    mig_backend.submit(spec("big", "sleep", "600", request=GpuRequest(mig_profile="4g.20gb")))
    wait_status(mig_backend, "big", "Running")
    mig_backend.submit(spec("victim", *STUBBORN, request=GpuRequest(mig_profile="3g.20gb")))
    wait_status(mig_backend, "victim", "Running")
    held = mig_backend.get_job("team-a", "victim").allocation
    mig_backend.submit(spec("notebook", "sleep", "600", request=GpuRequest(mig_profile="3g.20gb"),
                            type=JobType.INTERACTIVE))
    wait_status(mig_backend, "notebook", "Running", timeout=30)
    got = mig_backend.get_job("team-a", "notebook").allocation
    assert (got.mig_start, got.mig_profile) == (held.mig_start, held.mig_profile)  # the same partition
    assert mig_backend.get_job("team-a", "victim").status.value in ("Pending", "Preempted")


def test_a_fraction_waits_for_its_victim_on_the_same_gpu(backend: LocalBackend) -> None:  # noqa: F811
    backend.submit(spec("victim", *STUBBORN, request=GpuRequest(gpus=1)))
    wait_status(backend, "victim", "Running")
    backend.submit(spec("notebook", "sleep", "600", request=GpuRequest(fraction=0.5), type=JobType.INTERACTIVE))
    wait_status(backend, "notebook", "Running", timeout=30)
    assert backend.get_job("team-a", "victim").status.value in ("Pending", "Preempted")
