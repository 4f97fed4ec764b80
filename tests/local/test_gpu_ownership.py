"""One owner per GPU: a lock per GPU UUID that a second daemon sees held, with who holds it."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runai_lite.backends.local.gpu_ownership import GpuLocks, Owner

HOLD = """
import sys, time
from pathlib import Path
from runai_lite.backends.local.gpu_ownership import GpuLocks
locks = GpuLocks("/home/other/.local/share/runai-lite", Path(sys.argv[1]))
print(locks.claim(["GPU-a"]), flush=True)
time.sleep(600)
"""


def test_a_gpu_held_by_another_process_is_refused_with_its_owner_and_freed_when_it_ends(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "{}"  # it got the lock
        mine = GpuLocks("/home/me", directory)
        foreign = mine.claim(["GPU-a", "GPU-b"])
        assert foreign == {"GPU-a": Owner(uid=os.geteuid(), pid=holder.pid, home="/home/other/.local/share/runai-lite")}
        assert set(mine.held) == {"GPU-b"}
        why = foreign["GPU-a"].why("GPU-a")
        assert why == (f"GPU-a is owned by the daemon of uid {os.geteuid()} (pid {holder.pid}); "
                       "use the system mode: runai-adm local init --system")
    finally:
        holder.kill()
        holder.wait()
    assert mine.claim(["GPU-a", "GPU-b"]) == {}  # the holder died: its lock went with it
    assert set(mine.held) == {"GPU-a", "GPU-b"}
    assert mine.claim(["GPU-b"]) == {} and set(mine.held) == {"GPU-b"}  # a GPU that went away is let go
    mine.release()
    assert GpuLocks("/home/third", directory).claim(["GPU-b"]) == {}
    assert (directory.stat().st_mode & 0o7777) == 0o1777


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    directory = tmp_path / "locks"
    directory.mkdir()
    target = tmp_path / "precious"
    target.write_text("keep me")
    (directory / "GPU-a.lock").symlink_to(target)
    with pytest.raises(OSError) as refused:
        GpuLocks("/home/me", directory).claim(["GPU-a"])
    assert refused.value.errno == errno.ELOOP
    assert target.read_text() == "keep me"
