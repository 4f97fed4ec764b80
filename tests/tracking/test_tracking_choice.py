"""The pure parts of process tracking: reading cgroup mounts, choosing a tracker, the shim's words
and the device rules a job gets."""

from __future__ import annotations

from pathlib import Path

import pytest

from runai_lite.backends.local.tracking.choice import (
    MountUse,
    TrackingProbe,
    TrackingUnavailableError,
    choose_tracking,
    parse_mountinfo,
)
from runai_lite.backends.local.tracking.devices import JobDevices, NvidiaNodes, device_denials
from runai_lite.backends.local.tracking.protocol import RunAs, TrackingKind
from runai_lite.backends.local.tracking.shim import parse
from runai_lite.errors import UserError

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
UNIFIED = "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
ESCAPED = r"50 23 0:40 / /mnt/my\040cgroups rw - cgroup cgroup rw,pids,freezer" + "\n"


def test_mountinfo_gives_each_hierarchy_with_its_controllers() -> None:
    mounts = parse_mountinfo(HYBRID)
    assert [(str(m.path), m.version) for m in mounts] == [
        ("/sys/fs/cgroup/devices", 1), ("/sys/fs/cgroup/freezer", 1), ("/sys/fs/cgroup/pids", 1),
        ("/sys/fs/cgroup/unified", 2)]
    assert "freezer" in mounts[1].controllers and "devices" not in mounts[1].controllers
    (unified,) = parse_mountinfo(UNIFIED)  # optional fields before the separator are skipped
    assert (str(unified.path), unified.version) == ("/sys/fs/cgroup", 2)
    (escaped,) = parse_mountinfo(ESCAPED)
    assert str(escaped.path) == "/mnt/my cgroups" and {"pids", "freezer"} <= escaped.controllers


V2 = MountUse(Path("/cg2"))
V1 = {"pids": MountUse(Path("/cg/pids")), "freezer": MountUse(Path("/cg/freezer"))}
DENIED = MountUse(Path("/cg2"), "cannot create cgroups under /cg2: Permission denied")


@pytest.mark.parametrize(("setting", "probe", "kind", "words"), [
    ("auto", TrackingProbe(V2, True, V1), TrackingKind.CGROUP_V2, "cgroup v2 at /cg2"),
    ("auto", TrackingProbe(V2, False, V1), TrackingKind.CGROUP_V1, "pids and freezer"),
    ("auto", TrackingProbe(DENIED, True, V1), TrackingKind.CGROUP_V1, "/cg/pids"),
    ("auto", TrackingProbe(MountUse(None), False, V1), TrackingKind.CGROUP_V1, "/cg/freezer"),
    ("auto", TrackingProbe(DENIED, True, {"pids": MountUse(Path("/p"), "cannot create cgroups under /p: x")}),
     TrackingKind.PROCESS_TREE, "Permission denied"),
    ("auto", TrackingProbe(MountUse(None), False, {}), TrackingKind.PROCESS_TREE, "no cgroup2 hierarchy is mounted"),
    ("cgroup-v1", TrackingProbe(V2, True, V1), TrackingKind.CGROUP_V1, "pids"),
    ("process-tree", TrackingProbe(V2, True, V1), TrackingKind.PROCESS_TREE, "as configured"),
])
def test_the_choice_prefers_v2_then_v1_then_the_process_tree(setting, probe, kind, words) -> None:
    choice = choose_tracking(setting, probe)
    assert choice.kind is kind and words in choice.reason


def test_an_explicit_choice_the_machine_cannot_honour_is_an_error_naming_why() -> None:
    with pytest.raises(TrackingUnavailableError, match="Permission denied"):
        choose_tracking("cgroup-v2", TrackingProbe(DENIED, True, V1))
    with pytest.raises(TrackingUnavailableError, match="no freezer hierarchy"):
        choose_tracking("cgroup-v1", TrackingProbe(V2, True, {"pids": V1["pids"]}))
    with pytest.raises(UserError, match="auto, cgroup-v2, cgroup-v1, process-tree"):
        choose_tracking("cgroups", TrackingProbe(V2, True, V1))


def test_the_shim_reads_its_options_before_the_files_and_the_command() -> None:
    words = ["--cgroup", "/a", "--cgroup", "/b", "--umask", "027", "--uid", "1000", "--gid", "100",
             "--groups", "100,27", "L", "P", "E", "", "--", "sh", "-c", "--uid"]
    options, files, command = parse(words)
    assert options == {"cgroup": ["/a", "/b"], "umask": 0o27, "uid": 1000, "gid": 100, "groups": [100, 27]}
    assert files == ["L", "P", "E", ""] and command == ["sh", "-c", "--uid"]
    assert parse(["L", "P", "E", "/w", "--", "true"]) == ({"cgroup": []}, ["L", "P", "E", "/w"], ["true"])
    assert parse(["--bogus", "1", "L", "P", "E", "", "--", "true"]) is None
    assert parse(["L", "P", "E", "", "true"]) is None


def test_an_account_is_switched_only_by_a_root_daemon_and_always_with_its_groups() -> None:
    run_as = RunAs(uid=1000, gid=100, groups=(), umask=0o077)
    assert run_as.shim_options(0) == ["--umask", "77", "--uid", "1000", "--gid", "100", "--groups", ""]
    assert run_as.shim_options(1000) == ["--umask", "77"]


NODES = NvidiaNodes(gpus={0: (195, 0), 1: (195, 1), 2: (195, 2)}, caps_major=509,
                    mig_minors={"config": 1, "monitor": 2, "gpu0/gi1/access": 12, "gpu0/gi1/ci0/access": 13,
                                "gpu0/gi2/access": 21, "gpu0/gi2/ci0/access": 22, "gpu1/gi1/access": 111})


@pytest.mark.parametrize(("job", "denied"), [
    (JobDevices(gpus=(1,)), ["c 195:0 rwm", "c 195:2 rwm", "c 509:1 rwm", "c 509:12 rwm", "c 509:13 rwm",
                             "c 509:21 rwm", "c 509:22 rwm", "c 509:111 rwm"]),
    (JobDevices(gpus=(0, 2)), ["c 195:1 rwm", "c 509:1 rwm", "c 509:12 rwm", "c 509:13 rwm", "c 509:21 rwm",
                               "c 509:22 rwm", "c 509:111 rwm"]),
    (JobDevices(), ["c 195:0 rwm", "c 195:1 rwm", "c 195:2 rwm", "c 509:1 rwm", "c 509:12 rwm", "c 509:13 rwm",
                    "c 509:21 rwm", "c 509:22 rwm", "c 509:111 rwm"]),
    (JobDevices(mig=(0, 2, 0)), ["c 195:1 rwm", "c 195:2 rwm", "c 509:1 rwm", "c 509:12 rwm", "c 509:13 rwm",
                                 "c 509:111 rwm"]),
])
def test_a_job_is_denied_every_gpu_and_mig_capability_not_its_own(job, denied) -> None:
    assert device_denials(NODES, job) == denied


def test_without_capability_nodes_only_gpus_are_denied() -> None:
    nodes = NvidiaNodes(gpus={0: (195, 0), 1: (195, 1)}, mig_minors={"gpu0/gi1/access": 12})
    assert device_denials(nodes, JobDevices(mig=(1, 1, 0))) == ["c 195:0 rwm"]
