"""Job logs are bounded and read from their end (issue 10, Deliver 6): `joblog.tail` and
`joblog.trim` as functions, then a real daemon holding a noisy job's log to its cap and removing a
deleted job's record and log under the retention setting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend, daemon_stop, local_init
from runai_lite.backends.local.joblog import CUT, MARKER_SIZE, LogCap, tail, trim
from runai_lite.backends.local.store import Store

from .conftest import GRACE_SECONDS, spec, wait_for, wait_status

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("content, lines, max_bytes, expected", [
    (b"", 3, 1024, []),
    (b"one\ntwo\nthree\n", 2, 1024, ["two", "three"]),
    (b"one\ntwo\nthree\n", 9, 1024, ["one", "two", "three"]),
    (b"one\ntwo\nthree", 1, 1024, ["three"]),  # a last line still being written
    (b"one\n\n\nfour\n", 3, 1024, ["", "", "four"]),
    (b"x" * 200_000 + b"\nshort\n", 1, 1024, ["short"]),
    (b"x" * 200_000 + b"\n", 1, 1000, [CUT + "x" * 999]),  # one huge line: its end, marked as cut
    (b"a\n" + b"y" * 5000 + b"\n", 2, 1000, [CUT + "y" * 999]),
])
def test_tail_reads_the_last_lines_from_the_end(tmp_path: Path, content: bytes, lines: int, max_bytes: int,
                                                expected: list[str]) -> None:
    path = tmp_path / "job.log"
    path.write_bytes(content)
    shown, end = tail(path, lines, max_bytes)
    assert shown == expected and end == len(content)


def test_tail_of_a_missing_log_is_empty(tmp_path: Path) -> None:
    assert tail(tmp_path / "none.log", 5) == ([], 0)


def _numbered(count: int) -> bytes:
    return b"".join(b"line %06d\n" % i for i in range(count))


@pytest.mark.parametrize("size_lines, cap", [
    (1000, LogCap(max_bytes=65536, head_bytes=4096)),  # under the cap: untouched
    (50_000, LogCap(max_bytes=65536, head_bytes=4096)),
    (50_000, LogCap(max_bytes=65536, head_bytes=0)),
    (500_000, LogCap(max_bytes=1024 * 1024, head_bytes=100_000)),
])
def test_trim_keeps_the_head_a_marker_and_the_most_recent_output(tmp_path: Path, size_lines: int,
                                                                 cap: LogCap) -> None:
    path = tmp_path / "job.log"
    content = _numbered(size_lines)
    path.write_bytes(content)
    dropped = trim(path, cap)
    kept = path.read_bytes()
    if len(content) <= cap.max_bytes:
        assert dropped == 0 and kept == content
        return
    assert len(kept) <= cap.max_bytes
    assert kept.startswith(content[:cap.head_bytes])
    assert kept.endswith(content[-cap.tail_bytes:])
    assert f"[runai-lite: {dropped} bytes of output dropped here".encode() in kept
    assert len(kept) - MARKER_SIZE + dropped == len(content)  # every byte of output kept or counted


def test_a_second_trim_counts_everything_dropped(tmp_path: Path) -> None:
    path = tmp_path / "job.log"
    cap = LogCap(max_bytes=65536, head_bytes=1000)
    first, second = _numbered(20_000), _numbered(30_000)
    path.write_bytes(first)
    dropped = trim(path, cap)
    with path.open("ab") as log:
        log.write(second)
    dropped += trim(path, cap)
    kept = path.read_bytes()
    assert kept.count(b"bytes of output dropped here") == 1
    assert f"[runai-lite: {dropped} bytes of output dropped here".encode() in kept
    assert kept.startswith(first[:1000]) and kept.endswith(second[-cap.tail_bytes:])
    assert len(kept) - MARKER_SIZE + dropped == len(first) + len(second)


@pytest.mark.parametrize("max_bytes, head_bytes", [(1000, 0), (65536, 20000), (65536, -1)])
def test_a_cap_too_small_for_its_head_is_refused(max_bytes: int, head_bytes: int) -> None:
    with pytest.raises(ValueError, match="a log cap must be at least"):
        LogCap(max_bytes=max_bytes, head_bytes=head_bytes)


def test_a_trim_while_the_job_appends_loses_no_recent_line(tmp_path: Path) -> None:
    """The writer appends (O_APPEND) throughout; every line it wrote after the last trim began is
    still there, in order, after the last trim."""
    path = tmp_path / "job.log"
    path.write_bytes(b"")
    cap = LogCap(max_bytes=256 * 1024, head_bytes=1024)
    writer = subprocess.Popen([sys.executable, "-c", (
        "import os, sys\n"
        f"fd = os.open({str(path)!r}, os.O_WRONLY | os.O_APPEND)\n"
        "for i in range(300000): os.write(fd, b'%07d\\n' % i)\n")])
    while writer.poll() is None:
        trim(path, cap)
    trim(path, cap)
    kept = path.read_bytes()
    recent = kept.split(b"bytes of output dropped here", 1)[-1].split(b"\n")[1:-1]
    numbers = [int(line) for line in recent]
    assert numbers == list(range(numbers[0], 300000))


def _backend(home: Path, **config: object) -> LocalBackend:
    local_init(home, simulate="T4:1", enforcement="auto", grace_seconds=GRACE_SECONDS)
    store = Store(home / "state.db")
    with store.write() as conn:
        for key, value in config.items():
            store.set_config(conn, key, value)
    store.close()
    daemon_stop(home)  # the next command starts a daemon that reads them
    backend = LocalBackend(home)
    backend.create_project("team-a", 2)
    return backend


def test_a_noisy_jobs_log_stays_under_its_cap(home: Path) -> None:
    backend = _backend(home, log_max_bytes=64 * 1024, log_head_bytes=4096)
    noisy = ("import sys\nfor i in range(200000): sys.stdout.write('line %07d\\n' % i)\n"
             "sys.stdout.write('the end\\n')\n")
    backend.submit(spec("noisy", sys.executable, "-c", noisy))
    wait_status(backend, "noisy", "Succeeded")
    job = backend.get_job("team-a", "noisy")
    log_path = home / "logs" / f"{backend.store.live_job('team-a', 'noisy').id}.log"
    wait_for(lambda: "LogTrimmed" in [e.kind for e in backend.get_job("team-a", "noisy").events],
             what="the log to be trimmed")
    assert os.path.getsize(log_path) <= 64 * 1024
    lines = list(backend.logs("team-a", "noisy"))
    assert lines[0] == "line 0000000" and lines[-1] == "the end"
    assert any("bytes of output dropped here" in line for line in lines)
    assert list(backend.logs("team-a", "noisy", tail=2)) == ["line 0199999", "the end"]
    assert job.exit_code == 0
    backend.close()


def test_a_deleted_jobs_record_and_log_go_under_the_retention_setting(home: Path) -> None:
    backend = _backend(home, log_retention_seconds=0)
    backend.submit(spec("brief", "echo", "hello"))
    wait_status(backend, "brief", "Succeeded")
    job_id = backend.store.live_job("team-a", "brief").id
    assert list(backend.logs("team-a", "brief")) == ["hello"]
    backend.delete_jobs("team-a", ["brief"])
    wait_for(lambda: backend.store.job(job_id) is None and not (home / "logs" / f"{job_id}.log").exists(),
             what="the deleted job's record and log to be removed")
    assert backend.store.events(job_id) == ()
    backend.close()
