"""The node probe, against a made-up /proc, pipe directory and library."""

import os
import sys

import pytest

from runai_lite.enforcement import NodeProbe, probe_node


def _proc(tmp_path, processes):
    root = tmp_path / "proc"
    root.mkdir()
    (root / "self").mkdir()  # non-numeric entries are not processes
    for pid, argv in processes.items():
        (root / str(pid)).mkdir()
        (root / str(pid) / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return root


def _mps_pipe_dir(tmp_path, fifo=True):
    pipe_dir = tmp_path / "mps"
    pipe_dir.mkdir()
    if fifo:
        os.mkfifo(pipe_dir / "control")
    else:
        (pipe_dir / "control").write_text("")
    return pipe_dir


def test_bare_node_offers_nothing(tmp_path):
    probe = probe_node(
        hami_core_path=tmp_path / "libvgpu.so", environ={}, proc_root=_proc(tmp_path, {1: ["/sbin/init"]})
    )
    assert probe == NodeProbe(hami_core_path=str(tmp_path / "libvgpu.so"))
    assert not probe.hami_core_available and not probe.mps_available


def test_finds_hami_core_library_at_configured_path(tmp_path):
    library = tmp_path / "vgpu" / "libvgpu.so"
    library.parent.mkdir()
    library.write_bytes(b"\x7fELF")
    probe = probe_node(hami_core_path=library, environ={}, proc_root=_proc(tmp_path, {}))
    assert probe.hami_core_available and probe.hami_core_path == str(library)


def test_a_directory_is_not_the_library(tmp_path):
    (tmp_path / "libvgpu.so").mkdir()
    assert not probe_node(hami_core_path=tmp_path / "libvgpu.so", environ={}, proc_root=tmp_path).hami_core_available


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_library_is_not_available(tmp_path):
    library = tmp_path / "libvgpu.so"
    library.write_bytes(b"\x7fELF")
    library.chmod(0)
    assert not probe_node(hami_core_path=library, environ={}, proc_root=tmp_path).hami_core_available


def test_finds_mps_daemon_by_argv0_and_control_pipe(tmp_path):
    proc = _proc(tmp_path, {
        1: ["/sbin/init"],
        57: ["nvidia-cuda-mps-server"],
        42: ["/usr/bin/nvidia-cuda-mps-control", "-d"],
    })
    pipe_dir = _mps_pipe_dir(tmp_path)
    probe = probe_node(hami_core_path=tmp_path / "none.so", environ={"CUDA_MPS_PIPE_DIRECTORY": str(pipe_dir)},
                       proc_root=proc)
    assert probe.mps_control_pid == 42
    assert probe.mps_pipe_directory == str(pipe_dir)
    assert probe.mps_available and probe.mps_problem() == ""


def test_mps_server_alone_is_not_a_control_daemon(tmp_path):
    proc = _proc(tmp_path, {57: ["nvidia-cuda-mps-server"], 58: ["python", "nvidia-cuda-mps-control"]})
    probe = probe_node(environ={"CUDA_MPS_PIPE_DIRECTORY": str(_mps_pipe_dir(tmp_path))}, proc_root=proc,
                       hami_core_path=tmp_path / "none.so")
    assert probe.mps_control_pid is None and not probe.mps_available


def test_control_pipe_must_be_a_fifo(tmp_path):
    proc = _proc(tmp_path, {42: ["nvidia-cuda-mps-control", "-d"]})
    pipe_dir = _mps_pipe_dir(tmp_path, fifo=False)
    probe = probe_node(environ={"CUDA_MPS_PIPE_DIRECTORY": str(pipe_dir)}, proc_root=proc,
                       hami_core_path=tmp_path / "none.so")
    assert not probe.mps_control_pipe and not probe.mps_available
    assert "no control pipe" in probe.mps_problem()


def test_default_pipe_directory_without_the_variable(tmp_path):
    probe = probe_node(environ={}, proc_root=_proc(tmp_path, {}), hami_core_path=tmp_path / "none.so")
    assert probe.mps_pipe_directory == "/tmp/nvidia-mps"


def test_probing_creates_and_changes_nothing(tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    probe_node(hami_core_path=tmp_path / "lib" / "libvgpu.so",
               environ={"CUDA_MPS_PIPE_DIRECTORY": str(tmp_path / "pipes")}, proc_root=tmp_path / "no-proc")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_probe_round_trips_as_plain_data():
    probe = NodeProbe(hami_core_installed=True, mps_control_pipe=True, mps_control_pid=7)
    assert NodeProbe.model_validate(probe.model_dump()) == probe


def test_probe_of_this_machine_runs():
    # Whatever this machine has, probing it must answer without raising.
    assert isinstance(probe_node(), NodeProbe)
