"""Two homes' daemons on one machine with real GPUs (the fake NVML behind the real pynvml): the
first takes both GPUs, the second leaves them alone and says why in its status and in its pending
jobs' reasons, and takes them once the first lets go. The daemons run in this process (the fake
NVML lives here), cycled by hand."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rich.console import Console

from runai_lite.backends.local.control import daemon_status
from runai_lite.backends.local.daemon.sequencer import Daemon
from runai_lite.backends.local.gpu_ownership import LOCK_DIR_ENV
from runai_lite.backends.local.paths import Home
from runai_lite.backends.local.store import Store
from runai_lite.backends.local.views import node_views
from runai_lite.cli.runai_adm import _status_text
from runai_lite.cli.topview import node_view
from runai_lite.model import GpuRequest, JobSpec
from tests.fakes import fake_libnvml
from tests.fakes.fake_pynvml import FakeGpu, FakeNvml


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeNvml:
    fake = FakeNvml([FakeGpu.from_catalog("A100-SXM4-40GB", mig_current=False) for _ in range(2)])
    fake_libnvml.install(monkeypatch, fake)
    monkeypatch.setenv(LOCK_DIR_ENV, str(tmp_path / "locks"))
    return fake


def _home(path: Path) -> Home:
    home = Home.at(path)
    store = Store(home.db)
    with store.write() as conn:
        conn.execute("INSERT INTO projects (name, deserved_gpus, created_at) VALUES ('team-a', 2, 0)")
        store.set_config(conn, "node", "box")
        store.set_config(conn, "enforcement", "none")
    store.close()
    return home


def _pending_reason(daemon: Daemon, name: str) -> str:
    return next(r.pending_reason for r in daemon.ctx.store.live_jobs() if r.name == name)


def test_a_second_daemon_leaves_the_first_ones_gpus_alone_and_says_why(two_gpus, tmp_path: Path) -> None:
    first = Daemon(_home(tmp_path / "alice"))
    second = Daemon(_home(tmp_path / "bob"))
    try:
        assert [g.uuid for g in first.ctx.store.gpus("box")] == [g.uuid for g in two_gpus.gpus]
        assert second.ctx.store.gpus("box") == []
        foreign = daemon_status(tmp_path / "bob").foreign_gpus
        assert f"Left alone:  {two_gpus.gpus[1].uuid} is owned by" in _status_text(daemon_status(tmp_path / "bob"))
        (node,) = node_views(second.ctx.store)  # what `runai top node` draws
        assert node.gpus == () and node.notes == tuple(foreign[uuid] for uuid in sorted(foreign))
        drawn = Console(width=400, record=True)
        drawn.print(node_view(node))
        assert set(foreign) == {g.uuid for g in two_gpus.gpus}
        uuid = two_gpus.gpus[0].uuid
        assert foreign[uuid] == (f"{uuid} is owned by the daemon of uid {os.geteuid()} (pid {os.getpid()}); "
                                 "use the system mode: runai-adm local init --system")
        assert f"not used here: {uuid} is owned by the daemon of uid" in drawn.export_text()

        spec = JobSpec(name="wants-one", project="team-a", image="x", request=GpuRequest(gpus=1), command=("true",))
        with second.ctx.store.write() as conn:
            second.ctx.store.insert_job(conn, spec, "bob", "process", time.time())
        second.cycle(time.time())
        reason = _pending_reason(second, "wants-one")
        assert f"{uuid} is owned by the daemon of uid" in reason and "runai-adm local init --system" in reason

        first.close()
        first = None
        second.cycle(time.time() + second.ctx.settings.drift_seconds + 1)  # it looks again, takes them, binds
        assert len(second.ctx.store.gpus("box")) == 2 and second.ctx.foreign_gpus == {}
        assert daemon_status(tmp_path / "bob").foreign_gpus is None
        second.cycle(time.time() + second.ctx.settings.drift_seconds + 2)
        row = next(r for r in second.ctx.store.live_jobs() if r.name == "wants-one")
        assert row.status != "Pending" and "owned by" not in (row.pending_reason or ""), row.pending_reason
    finally:
        for daemon in (first, second):
            if daemon is not None:
                daemon.close()
