"""What an embedded daemon costs while nothing can change: CPU per second of a personal daemon
whose queue holds many jobs that cannot run (one GPU, held by the first), read from /proc over a
window.

    .venv/bin/python -m benchmarks.daemon_idle [--jobs 1000] [--seconds 20]

The daemon still cycles twice a second (to see processes end) and plans every `replan_seconds`;
what it reads on each cycle is what this measures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.cli_startup import prepare


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="runai-daemon-idle-"))
    os.environ["RUNAI_LITE_RUNTIME"] = "process"
    try:
        prepare(home, jobs=args.jobs)
        from runai_lite.backends.local.control import daemon_status

        pid = daemon_status(home).pid
        assert pid is not None, "the daemon is not running"
        time.sleep(3)  # past the first cycles, which catch up with the store
        before = cpu_seconds(pid)
        time.sleep(args.seconds)
        used = cpu_seconds(pid) - before
        print(f"daemon CPU with {args.jobs} jobs queued (1 running, the rest unable to run): "
              f"{used / args.seconds * 100:.1f}% of a core ({used:.2f} s over {args.seconds:.0f} s)")
    finally:
        from runai_lite.backends.local import LocalBackend
        from runai_lite.backends.local.control import daemon_stop

        try:
            LocalBackend(home).delete_jobs("team-a", None)  # the running one's process goes too
        finally:
            daemon_stop(home)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
