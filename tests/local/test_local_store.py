"""The state database: schema versions, file modes, uniqueness, and concurrent writers."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import stat
from pathlib import Path

import pytest

from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import MIGRATIONS, SCHEMA_VERSION, Store
from runai_lite.errors import OperationalError, UserError
from runai_lite.model import JobSpec, JobStatus, Submitter


def _spec(name: str, project: str = "team-a") -> JobSpec:
    return JobSpec(name=name, project=project, image="img", command=("true",))


def test_new_store_is_at_the_current_schema_version_with_private_files(tmp_path: Path) -> None:
    home = Home.at(tmp_path / "home")
    store = Store(home.db)
    with store.write() as conn:
        store.insert_job(conn, _spec("a"), "me", "process", 1.0)
    assert store.conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(home.root.stat().st_mode) == 0o700
    for directory in (home.logs, home.run):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in home.root.glob("state.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_an_existing_home_is_tightened_to_0700(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    root.chmod(0o755)
    Home.at(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_migrations_run_from_an_older_version_and_keep_data(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO projects VALUES ('old', 1.0, 0)")
    conn.commit()
    conn.close()
    store = Store(path)
    assert [p.name for p in store.projects()] == ["old"]
    assert store.conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_not_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(OperationalError, match="newer"):
        Store(path)


def test_duplicate_live_names_are_refused_but_a_deleted_name_is_free_again(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    with store.write() as conn:
        first = store.insert_job(conn, _spec("a"), "me", "process", 1.0)
    with pytest.raises(UserError, match="already exists"), store.write() as conn:
        store.insert_job(conn, _spec("a"), "me", "process", 2.0)
    with store.write() as conn:
        store.insert_job(conn, _spec("a", project="team-b"), "me", "process", 2.0)
        store.update_job(conn, first.id, status="Deleted")
        again = store.insert_job(conn, _spec("a"), "me", "process", 3.0)
    assert again.id != first.id
    assert store.live_job("team-a", "a").id == again.id


def test_a_failed_transaction_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.db")
    with pytest.raises(RuntimeError), store.write() as conn:
        store.insert_job(conn, _spec("a"), "me", "process", 1.0)
        raise RuntimeError("boom")
    assert store.all_jobs() == []


def _submit_many(path: str, worker: int, count: int) -> None:
    store = Store(Path(path))
    for i in range(count):
        with store.write() as conn:
            store.insert_job(conn, _spec(f"w{worker}-{i}"), "me", "process", float(i))
            store.add_event(conn, store.live_job("team-a", f"w{worker}-{i}", conn).id, "Submitted", "", 0.0)
        store.all_jobs()
    store.close()


def test_concurrent_writer_processes_record_every_job_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    Store(path).close()
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_submit_many, args=(str(path), w, 25)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    store = Store(path)
    names = [r.name for r in store.all_jobs()]
    assert len(names) == 100 and len(set(names)) == 100
    assert store.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 100


def test_a_job_keeps_its_submitter_and_older_rows_have_none(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.execute("INSERT INTO jobs (id, project, name, type, user, spec, runtime, status, submitted_at) "
                 "VALUES ('jold', 'team-a', 'old', 'train', 'me', ?, 'process', 'Pending', 1.0)",
                 (_spec("old").model_dump_json(),))
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.job("jold").submitter is None
    who = Submitter(user="alice", uid=1234, gid=1234, groups=(27, 100), umask=0o027, cwd="/home/alice/exp",
                    env={"PATH": "/opt/conda/envs/torch/bin:/usr/bin", "ONLY_IN_MY_SHELL": "x=y"})
    with store.write() as conn:
        row = store.insert_job(conn, _spec("new"), "alice", "process", 2.0, who)
    assert row.submitter == who
    assert Store(path).live_job("team-a", "new").submitter == who  # read back by another connection


# Each job state, as the daemon and the CLI write it, and the named queries that must find it.
_STATES = {
    "waiting": dict(),
    "bound": dict(allocation='{"kind": "gpu", "node": "n", "gpu_indices": [0]}'),
    "bound-deleting": dict(allocation='{"kind": "gpu", "node": "n", "gpu_indices": [0]}', delete_requested=1),
    "running": dict(status="Running", attempts=1),
    "deleting": dict(status="Running", attempts=1, delete_requested=1),
    "preempted": dict(status="Preempted", attempts=1),
    "done": dict(status="Succeeded", attempts=1),
    "gone": dict(status="Deleted", delete_requested=1),
}
_FOUND_BY = {
    "live_jobs": {"waiting", "bound", "bound-deleting", "running", "deleting", "preempted", "done"},
    "active_jobs": {"waiting", "bound", "bound-deleting", "running", "deleting", "preempted"},
    "supervised_jobs": {"running", "deleting", "preempted"},
    "bound_jobs": {"bound", "bound-deleting"},
    "all_jobs": set(_STATES),
}


@pytest.mark.parametrize("query", sorted(_FOUND_BY))
def test_each_named_query_finds_exactly_the_jobs_in_its_states(tmp_path: Path, query: str) -> None:
    store = Store(tmp_path / "state.db")
    with store.write() as conn:
        for name, values in _STATES.items():
            row = store.insert_job(conn, _spec(name), "me", "process", 1.0)
            if values:
                store.update_job(conn, row.id, **values)
    assert {r.name for r in getattr(store, query)()} == _FOUND_BY[query]
    stopping = {r.name for r in store.all_jobs() if r.stopping}
    assert stopping == {"bound-deleting", "deleting", "preempted", "gone"}


def test_gpu_and_partition_rows_come_back_typed(tmp_path: Path) -> None:
    from runai_lite.backends.local.store import GpuRow, PartitionRow, PartitionState

    store = Store(tmp_path / "state.db")
    gpu = GpuRow(node="n", gpu_index=0, uuid="GPU-0", model="A100-SXM4-40GB", memory_mib=40960, memory_slices=8,
                 mig_capable=True, mig_enabled=True, simulated=True, dynamic_mig=False)
    part = PartitionRow(node="n", gpu_index=0, start=6, profile="1g.5gb", size=1, state=PartitionState.STATIC,
                        uuid="MIG-1")
    with store.write() as conn:
        store.publish_gpus(conn, "n", [gpu])
        store.put_partition(conn, part)
        store.set_dynamic_mig(conn, "n", 0, True)
    assert store.gpus("n") == [GpuRow(**{**gpu.__dict__, "dynamic_mig": True})]
    assert store.mig_layout("n") == [PartitionRow(**{**part.__dict__, "state": PartitionState.READY})]
    with store.write() as conn:
        store.publish_gpus(conn, "n", [])
    assert store.gpus("n") == []


def test_only_the_store_speaks_sql_in_the_embedded_backend() -> None:
    package = Path(__file__).resolve().parents[2] / "runai_lite" / "backends" / "local"
    speaking = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                      if p.name != "store.py" and ".execute" in p.read_text())
    # TAB completion's names and `runai list`'s rows, read without loading the store: read-only.
    assert speaking == ["job_summaries.py", "names.py"]
    for name, reads in (("names.py", 2), ("job_summaries.py", 2)):
        text = (package / name).read_text()
        assert "mode=ro" in text
        assert re.findall(r'"(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP)\b', text.replace('f"', '"')) == ["SELECT"] * reads


def test_completion_names_are_the_live_jobs_the_store_lists(tmp_path: Path) -> None:
    from runai_lite.backends.local.names import job_names, project_names

    store = Store(Home.at(tmp_path / "home").db)
    assert job_names(tmp_path / "missing.db", "team-a") == [] and project_names(tmp_path / "missing.db") == []
    with store.write() as conn:
        Store.insert_project(conn, "team-b", 1, 0.0)
        Store.insert_project(conn, "team-a", 1, 0.0)
        rows = [store.insert_job(conn, _spec(name), "u", "process", float(number))
                for number, name in enumerate(("one", "two", "three"))]
        store.insert_job(conn, _spec("other", "team-b"), "u", "process", 9.0)
        store.update_job(conn, rows[1].id, status=JobStatus.DELETED.value)
    assert job_names(store.path, "team-a") == [row.name for row in store.live_jobs("team-a")] == ["one", "three"]
    assert project_names(store.path) == [p.name for p in store.projects()] == ["team-a", "team-b"]
