"""A job ends with its command: what the command left running in the background (`cmd &`) is
stopped before the job is recorded finished, as a container's processes end with its main
process, so a finished job never keeps the GPU it was given. (The daemon's consistency check, run
after every cycle, also fails the test through the `home` fixture if it ever saw otherwise.)"""

from __future__ import annotations

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.consistency import live_job_processes
from runai_lite.model import GpuRequest
from tests.local.conftest import backend, home, spec, wait_status  # noqa: F401 - fixtures

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("command,status", [
    ("trap '' TERM; sleep 600 & echo started", "Succeeded"),
    ("sleep 600 & (sleep 600 &) ; exit 3", "Failed"),
])
def test_background_processes_end_with_the_job(backend: LocalBackend, command: str, status: str) -> None:  # noqa: F811
    backend.submit(spec("leaver", "sh", "-c", command, request=GpuRequest(fraction=0.5), backoff_limit=0))
    wait_status(backend, "leaver", status)
    row = backend.store.live_job("team-a", "leaver")
    assert live_job_processes({row.id}) == {}
