"""The options a container runtime is called with on this kind of machine, decided from its facts,
and the GPUs the machine's CDI specs name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runai_lite.backends.local.container_host import (
    ContainerHost,
    HostFacts,
    cdi_gpu_names,
    cdi_gpus,
    container_host,
    read_facts,
)

# This sandbox's kind of host: cgroup v1 with v2 at /sys/fs/cgroup/unified, no systemd, root
# without CAP_SYS_RESOURCE.
HYBRID = HostFacts(runtime="podman", oci_runtime="crun", cgroup_manager="systemd",
                   installed_oci_runtimes=frozenset({"crun", "runc"}), hybrid_cgroups=True, systemd_running=False,
                   may_raise_limits=False, nofile=(1024, 20000), nproc=(96362, 96362), pid_max=32768)


@pytest.mark.parametrize(("facts", "global_options", "run_options"), [
    (HYBRID, ("--runtime", "runc", "--cgroup-manager", "cgroupfs"),
     ("--ulimit", "nofile=1024:20000", "--ulimit", "nproc=32768:32768")),
    # a systemd host with cgroup v2 only: podman's own choices, spelled out
    (HostFacts(runtime="podman", oci_runtime="crun", cgroup_manager="systemd",
               installed_oci_runtimes=frozenset({"crun"})),
     ("--runtime", "crun", "--cgroup-manager", "systemd"), ()),
    # hybrid but no runc to fall back on: crun is what there is
    (HostFacts(runtime="podman", oci_runtime="crun", cgroup_manager="cgroupfs",
               installed_oci_runtimes=frozenset({"crun"}), hybrid_cgroups=True),
     ("--runtime", "crun", "--cgroup-manager", "cgroupfs"), ()),
    # `podman info` gave nothing: leave podman to its defaults, but still keep the limits grantable
    (HostFacts(runtime="podman", may_raise_limits=False, nofile=(4096, 4096), nproc=(100, 200), pid_max=4194304),
     (), ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=100:200")),
    (HostFacts(runtime="docker", hybrid_cgroups=True, may_raise_limits=False), (), ()),  # docker's daemon decides
])
def test_the_options_follow_the_machine(facts, global_options, run_options) -> None:
    host = container_host(facts)
    assert (host.global_options, host.run_options) == (global_options, run_options)
    assert host.command("exec", "c") == [facts.runtime, *global_options, "exec", "c"]
    assert ContainerHost.from_json(json.loads(json.dumps(host.to_json()))) == host


def test_the_facts_are_read_off_this_machine() -> None:
    facts = read_facts("podman")
    assert facts.nofile[0] <= facts.nofile[1] and facts.pid_max > 0
    hybrid = Path("/sys/fs/cgroup/unified/cgroup.controllers").exists() and Path("/sys/fs/cgroup/pids").is_dir()
    assert facts.hybrid_cgroups == hybrid
    assert read_facts("docker") == HostFacts("docker")


def test_cdi_specs_name_gpus_in_json_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "nvidia.json").write_text(json.dumps({
        "cdiVersion": "0.5.0", "kind": "nvidia.com/gpu",
        "devices": [{"name": "GPU-1", "containerEdits": {}}, {"name": "all", "containerEdits": {}}]}))
    (tmp_path / "mig.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: MIG-2\n")
    (tmp_path / "other.yaml").write_text("kind: vendor.com/fpga\ndevices:\n- name: GPU-3\n")
    (tmp_path / "broken.yaml").write_text("kind: [nvidia.com/gpu\n")
    (tmp_path / "notes.txt").write_text("kind: nvidia.com/gpu")
    assert cdi_gpus([tmp_path, tmp_path / "missing"]) == {"GPU-1", "all", "MIG-2"}
    assert cdi_gpu_names([None, [], {"kind": "nvidia.com/gpu", "devices": [{"name": 3}, "x"]}]) == frozenset()
