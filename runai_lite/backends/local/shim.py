"""Supervisor of one job attempt: runs the job's command and records how it ended.

Started by the daemon as `python -I -S shim.py LOCK PIDFILE EXITFILE CWD -- ARGV...` in a new
session (so the job's whole process group can be signalled). It holds an exclusive `flock` on LOCK
for as long as it or the job's processes live (the job inherits the descriptor), which is how a
restarted daemon tells a live job from a dead one without trusting pids. When the command ends it
writes the exit status to EXITFILE (atomically), so the status survives a daemon that was down at
the time.

Standard library only, and run with `-I -S`: it must start fast, and the job's PYTHONPATH (which
may carry the enforcement hook) must not reach the supervisor itself.
"""

import fcntl
import json
import os
import signal
import subprocess
import sys
import time


def write_atomically(path: str, text: str) -> None:
    """Replace `path` with `text` (mode 0600) so that a reader sees the old or the new, never a part."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _ignore(signum, frame):
    """The daemon signals the whole process group: the job gets the signal itself, and the
    supervisor stays to record how the job ended. (A handler, not SIG_IGN: an ignored signal would
    be inherited by the job.)"""


def end_stragglers(proc: str = "/proc") -> None:
    """The job's command has ended: so does what it left running in its process group (`cmd &`),
    as a container's processes end with its main process. Otherwise they would keep the GPU of a
    job the daemon is about to call finished. Done before the exit is recorded, so that no moment
    shows a finished job with live processes; the shim itself is spared (not a group kill)."""
    me, group = os.getpid(), os.getpgid(0)
    for _ in range(100):
        left = [pid for pid in _group_members(proc, group) if pid != me]
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.01)


def _group_members(proc: str, group: int) -> list[int]:
    """Live (not zombie) processes in process group `group`, from /proc/PID/stat."""
    members = []
    for name in os.listdir(proc):
        if not name.isdigit():
            continue
        try:
            with open(f"{proc}/{name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z" and int(fields[2]) == group:
            members.append(int(name))
    return members


def main(argv: list[str]) -> int:
    lock_path, pid_path, exit_path, cwd, separator, *command = argv
    if separator != "--" or not command:
        print("runai-lite shim: usage: shim.py LOCK PIDFILE EXITFILE CWD -- ARGV...", file=sys.stderr)
        return 64
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 75  # another supervisor runs this attempt already
    os.set_inheritable(lock_fd, True)
    write_atomically(pid_path, str(os.getpid()))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _ignore)

    sys.stdout.flush()
    try:
        child = subprocess.Popen(command, cwd=cwd or None, pass_fds=(lock_fd,))
    except FileNotFoundError as exc:
        missing = cwd if cwd and not os.path.isdir(cwd) else command[0]
        print(f"runai-lite: cannot start the job: {missing} was not found ({exc.strerror})", file=sys.stderr)
        code, sig = 127, None
    except PermissionError as exc:
        print(f"runai-lite: cannot start the job: {command[0]}: {exc.strerror}", file=sys.stderr)
        code, sig = 126, None
    except OSError as exc:
        print(f"runai-lite: cannot start the job: {exc}", file=sys.stderr)
        code, sig = 126, None
    else:
        returned = child.wait()
        code, sig = (128 - returned, -returned) if returned < 0 else (returned, None)
        end_stragglers()
    sys.stderr.flush()
    write_atomically(exit_path, json.dumps({"code": code, "signal": sig}))
    return code & 0xFF


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
