"""`runai list`'s rows read straight from the database say what the store's records say: for jobs
in every status, with every kind of request, holding an allocation or not, started or not."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from runai_lite.backends.local.job_summaries import job_summaries
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import Store
from runai_lite.errors import OperationalError
from runai_lite.model import Allocation, AllocationKind, GpuRequest, JobSpec, JobStatus, JobType

REQUESTS = {
    "whole": (GpuRequest(gpus=2), Allocation(kind=AllocationKind.GPU, node="vm", gpu_indices=(0, 1))),
    "fraction": (GpuRequest(fraction=0.25),
                 Allocation(kind=AllocationKind.FRACTION, node="vm", gpu_indices=(1,), share_milli=250)),
    "memory": (GpuRequest(memory_bytes=500 * 2**20),
               Allocation(kind=AllocationKind.FRACTION, node="vm", gpu_indices=(0,), share_milli=13, memory_mib=500)),
    "none": (None, Allocation(kind=AllocationKind.GPU, node="vm", gpu_indices=())),  # CPU only
    "mig": (GpuRequest(mig_profile="2g.10gb"),
            Allocation(kind=AllocationKind.MIG, node="vm", gpu_indices=(0,), share_milli=285, mig_profile="2g.10gb",
                       mig_start=2, mig_size=2)),
}


def _fill(store: Store) -> None:
    """One job per status x request x (allocation stored or not) x (started or not), in two
    projects, with the machine's node recorded as the daemon records it."""
    cases = itertools.product(JobStatus, REQUESTS.items(), (True, False), (True, False))
    with store.write() as conn:
        store.set_config(conn, "node", "vm")
        for number, (status, (kind, (request, allocation)), allocated, started) in enumerate(cases):
            project = ("team-a", "team-b")[number % 2]
            job_type = (JobType.TRAIN, JobType.INTERACTIVE)[number % 3 == 0]
            spec = JobSpec(name=f"j{number}", project=project, image=f"img-{kind}", type=job_type, request=request)
            row = store.insert_job(conn, spec, "alice" if number % 5 else "", "process", 100.0 + number)
            store.update_job(conn, row.id, status=status.value, started_at=150.0 + number if started else None,
                             allocation=allocation.model_dump_json() if allocated else None)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = Store(Home.at(tmp_path_factory.mktemp("summaries") / "home").db)
    _fill(store)
    return store


@pytest.mark.parametrize("project", ["team-a", "team-b", None, "nobody"])
def test_the_rows_are_the_summaries_of_the_stores_records(store: Store, project: str | None) -> None:
    node = store.config("node")
    expected = [row.to_info(node=node).summary() for row in store.live_jobs(project)]
    assert job_summaries(store.path, project) == expected
    if project != "nobody":
        assert len(expected) > 10 and {s.status for s in expected} == set(JobStatus) - {JobStatus.DELETED}


def test_what_the_rows_show_of_held_and_ended_jobs(store: Store) -> None:
    rows = {(s.status, s.image, s.node is not None, s.allocated_gpus): s for s in job_summaries(store.path, None)}
    running_mig = next(s for (status, image, _, _), s in rows.items()
                       if status is JobStatus.RUNNING and image == "img-mig" and s.allocated_gpus is not None)
    assert (running_mig.allocated_mig_profile, running_mig.node, running_mig.requested) == ("2g.10gb", "vm", "2g.10gb")
    pending = [s for (status, *_), s in rows.items() if status is JobStatus.PENDING]
    assert pending and all(s.allocated_gpus is None and s.node is None for s in pending)  # bound is not held
    memory = next(s for s in rows.values() if s.image == "img-memory")
    assert memory.requested == "500Mi"


def test_a_file_that_is_no_database_is_called_damaged_with_the_way_out(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_text("not a database")
    with pytest.raises(OperationalError, match="is damaged") as raised:
        job_summaries(bad, "team-a")
    assert "runai-adm local repair" in (raised.value.hint or "")
