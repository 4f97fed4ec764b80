"""Who a request acts as: the submitter captured at submit time, and the peer credentials the
kernel gives a Unix socket server."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from runai_lite.backends.local import LocalBackend
from runai_lite.backends.local.identity import peer_caller, peer_groups, user_name
from runai_lite.files import current_umask

from .conftest import spec


def test_personal_mode_records_the_submitting_process_as_the_submitter(backend: LocalBackend, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    workdir = tmp_path / "experiment"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("ONLY_IN_THIS_SHELL", "42")
    old = os.umask(0o027)
    try:
        backend.submit(spec("who", "true"))
    finally:
        os.umask(old)
    submitter = backend.store.live_job("team-a", "who").submitter
    assert submitter is not None
    assert (submitter.uid, submitter.gid, submitter.user) == (os.geteuid(), os.getegid(), user_name(os.geteuid()))
    assert submitter.cwd == str(workdir) and submitter.umask == 0o027
    assert submitter.env["ONLY_IN_THIS_SHELL"] == "42"
    assert backend.get_job("team-a", "who").user == submitter.user


def test_the_umask_is_read_without_changing_it() -> None:
    old = os.umask(0o077)
    try:
        assert current_umask() == 0o077 and current_umask() == 0o077
    finally:
        os.umask(old)


def test_a_socket_peer_is_identified_by_the_kernel() -> None:
    server, client = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with server, client:
        caller, pid = peer_caller(server)
    assert pid == os.getpid()
    assert (caller.uid, caller.gid) == (os.geteuid(), os.getegid())
    assert set(caller.groups) == set(os.getgroups()) - {os.getegid()}


def test_peer_groups_come_from_proc_only_while_the_pid_still_runs_as_that_uid(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    (proc / "77").mkdir(parents=True)
    (proc / "77" / "status").write_text("Name:\tpython\nUid:\t1000\t1000\t1000\t1000\nGroups:\t27 100 1000\n")
    assert peer_groups(77, 1000, 1000, str(proc)) == (27, 100)
    # pid 77 now belongs to another account: its groups are not the peer's
    assert 27 not in peer_groups(77, 0, 0, str(proc))
    assert peer_groups(78, 0, 0, str(proc)) == tuple(sorted(set(os.getgrouplist("root", 0)) - {0}))
