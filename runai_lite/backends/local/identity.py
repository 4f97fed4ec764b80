"""Who is calling, from the kernel: the account a request acts as and the submitter a job runs as.

In personal mode the caller is this process. In system mode the server reads the caller from the
Unix socket's peer credentials (`SO_PEERCRED`: uid, gid and pid as the kernel recorded them at
`connect`) and the peer's supplementary groups from `/proc/PID/status`; nothing a client sends
(variables, files, request fields) decides who it is. Only the submit context (umask, directory,
environment) comes from the client, and it describes the client's own process.
"""

from __future__ import annotations

import os
import pwd
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from ...model import Submitter

ROOT_UID = 0


@dataclass(frozen=True)
class Caller:
    """The account a request acts as."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    user: str

    @property
    def is_root(self) -> bool:
        return self.uid == ROOT_UID

    def submitter(self, env: Mapping[str, str], cwd: str, umask: int) -> Submitter:
        """The job's run-as context: this account, with the client's submit context."""
        return Submitter(user=self.user, uid=self.uid, gid=self.gid, groups=self.groups, umask=umask, cwd=cwd,
                         env=dict(env))


def user_name(uid: int) -> str:
    """The account name of `uid`, or the number itself for a uid without a passwd entry."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def this_process() -> Caller:
    """The effective account of this process ($USER and $LOGNAME are not asked: anyone can set them)."""
    uid = os.geteuid()
    gid = os.getegid()
    return Caller(uid=uid, gid=gid, groups=tuple(sorted(set(os.getgroups()) - {gid})), user=user_name(uid))


def peer_caller(conn: socket.socket) -> tuple[Caller, int]:
    """The account at the other end of a Unix stream socket, and its pid, from `SO_PEERCRED`."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    return Caller(uid=uid, gid=gid, groups=peer_groups(pid, uid, gid), user=user_name(uid)), pid


def peer_groups(pid: int, uid: int, gid: int, proc: str = "/proc") -> tuple[int, ...]:
    """The supplementary groups of process `pid`, which the kernel says runs as `uid`.

    Read from `/proc/PID/status` while that process still runs as `uid` (its `Uid:` line says so);
    a peer that has gone, or a pid reused by another account's process, falls back to the groups
    the account database gives `uid`, never to another process's groups."""
    try:
        with open(f"{proc}/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        uids = [int(word) for word in fields["Uid"].split()]
        groups = [int(word) for word in fields["Groups"].split()]
    except (OSError, KeyError, ValueError):
        uids, groups = [], []
    if uid not in uids[1:2]:  # the effective uid is the second field
        groups = _account_groups(uid, gid)
    return tuple(sorted(set(groups) - {gid}))


def _account_groups(uid: int, gid: int) -> list[int]:
    try:
        return os.getgrouplist(pwd.getpwuid(uid).pw_name, gid)
    except KeyError:
        return []
