"""Supervisor of one job attempt: runs the job's command and records how it ended.

Started by a process tracker as
`python -I -S shim.py [OPTIONS] LOCK PIDFILE EXITFILE CWD -- ARGV...` in a new session (so the
job's whole process group can be signalled). OPTIONS:

- `--cgroup DIR` (repeatable): the shim moves itself into each cgroup before anything else, so the
  job and all it starts are there; a cgroup it cannot join stops the attempt (exit 126) rather
  than letting it run untracked.
- `--childfile PATH`: where the job's main pid goes once it runs, so that a daemon (the child
  subreaper) that inherits the job when this supervisor is killed records its end instead.
- `--umask OCTAL`, and when the daemon is root `--uid N --gid N --groups G,...`: the account the
  job runs as (the shim itself stays the daemon's, to write its files). The job's directory is
  entered as that account, so a directory it may not enter is refused, not entered by root.

It holds an exclusive `flock` on LOCK for as long as it or the job's processes live (the job
inherits the descriptor), which is how a restarted daemon tells a live job from a dead one without
trusting pids. When the command ends it writes the exit status to EXITFILE (atomically), so the
status survives a daemon that was down at the time.

Standard library only, and run with `-I -S`: it must start fast, and the job's PYTHONPATH (which
may carry the enforcement hook) must not reach the supervisor itself.
"""

import errno
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
        left = [pid for pid in group_members(proc, group) if pid != me]
        if not left:
            return
        signal_each(left, signal.SIGKILL)
        time.sleep(0.01)


def signal_each(pids, signum: int) -> bool:
    """Send `signum` to each pid; False when none was there to receive it."""
    sent = False
    for pid in pids:
        try:
            os.kill(pid, signum)
            sent = True
        except (ProcessLookupError, PermissionError):
            pass
    return sent


def group_members(proc: str, group: int) -> list[int]:
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


USAGE = "usage: shim.py [--cgroup DIR]... [--umask OCTAL] [--uid N --gid N --groups G,...] LOCK PIDFILE EXITFILE CWD -- ARGV..."


def parse(argv: list[str]) -> tuple[dict, list[str], list[str]] | None:
    """(options, [LOCK, PIDFILE, EXITFILE, CWD], command), or None when the words do not fit."""
    options: dict = {"cgroup": []}
    words = list(argv)
    while words and words[0].startswith("--") and words[0] != "--":
        name, value = words[0][2:], words[1] if len(words) > 1 else None
        if value is None or name not in ("cgroup", "umask", "uid", "gid", "groups", "childfile"):
            return None
        if name == "cgroup":
            options["cgroup"].append(value)
        elif name == "childfile":
            options["childfile"] = value
        elif name == "groups":
            options["groups"] = [int(g) for g in value.split(",") if g]
        else:
            options[name] = int(value, 8 if name == "umask" else 10)
        words = words[2:]
    if len(words) < 6 or words[4] != "--":
        return None
    return options, words[:4], words[5:]


def join_cgroups(directories: list[str]) -> None:
    for directory in directories:
        with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))


def spawn(command: list[str], cwd: str, options: dict, lock_fd: int) -> subprocess.Popen:
    """Start the job: as the submitter when an account is given, its directory entered as them."""
    account = {}
    if "uid" in options:
        account = {"user": options["uid"], "group": options["gid"], "extra_groups": options.get("groups", [])}

    def enter_directory() -> None:  # runs in the child after it took the account, before exec
        if cwd:
            try:
                os.chdir(cwd)
            except OSError as exc:
                os.write(2, f"runai-lite: cannot start the job: cannot enter {cwd}: {exc.strerror}\n".encode())
                os._exit(127)

    return subprocess.Popen(command, pass_fds=(lock_fd,), umask=options.get("umask", -1),
                            preexec_fn=enter_directory if cwd else None, **account)


def main(argv: list[str]) -> int:
    parsed = parse(argv)
    if parsed is None:
        print(f"runai-lite shim: {USAGE}", file=sys.stderr)
        return 64
    options, (lock_path, pid_path, exit_path, cwd), command = parsed
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 75  # another supervisor runs this attempt already
    os.set_inheritable(lock_fd, True)
    try:
        join_cgroups(options["cgroup"])
    except OSError as exc:
        print(f"runai-lite: cannot start the job: cannot join its cgroup: {exc}", file=sys.stderr)
        sys.stderr.flush()
        write_atomically(exit_path, json.dumps({"code": 126, "signal": None}))
        return 126
    write_atomically(pid_path, str(os.getpid()))
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _ignore)

    sys.stdout.flush()
    try:
        child = spawn(command, cwd, options, lock_fd)
    except FileNotFoundError as exc:
        print(f"runai-lite: cannot start the job: {command[0]} was not found ({exc.strerror})", file=sys.stderr)
        code, sig = 127, None
    except PermissionError as exc:
        print(f"runai-lite: cannot start the job: {command[0]}: {exc.strerror}", file=sys.stderr)
        code, sig = 126, None
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"runai-lite: cannot start the job: {exc}", file=sys.stderr)
        code, sig = 126, None
    else:
        if "childfile" in options:  # who the daemon waits for if this supervisor is killed
            try:
                write_atomically(options["childfile"], str(child.pid))
            except OSError:
                pass  # a full disk: this supervisor records the end itself
        returned = child.wait()
        code, sig = (128 - returned, -returned) if returned < 0 else (returned, None)
        end_stragglers()
    sys.stderr.flush()
    record_exit(exit_path, code, sig)
    return code & 0xFF


def record_exit(path: str, code: int, sig: int | None, retry_seconds: float = 1.0) -> None:
    """Write the exit file, however long it takes: while the disk (or quota) is full the supervisor
    stays, holding the attempt open, and tries again, so the status is recorded late but never lost
    (how late is recorded with it)."""
    ended = time.monotonic()
    record = {"code": code, "signal": sig}
    while True:
        try:
            write_atomically(path, json.dumps(record))
            return
        except OSError as exc:  # the temporary file stays meanwhile: the next try truncates and reuses it
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
        time.sleep(retry_seconds)
        record["late_seconds"] = round(time.monotonic() - ended, 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
