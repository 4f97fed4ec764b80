"""Jobs in real podman containers through the real `runai` CLI and daemon: the image, bind mounts,
working directory, variables and published ports a job asks for; `runai exec`/`bash`/`attach`
inside its container; the container stopped and removed when the job is deleted or preempted (and
its GPU freed); GPUs handed over as the NVIDIA container toolkit expects, by CDI where a spec names
them and by `NVIDIA_VISIBLE_DEVICES` otherwise."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.cli.test_exec_terminal import in_terminal
from tests.containers.conftest import (
    ContainerCli,
    container_exists,
    gpu_uuids,
    wait_gone,
    wait_present,
    write_cdi_spec,
)
from tests.e2e.cli_harness import WAIT_SECONDS

pytestmark = pytest.mark.e2e


def test_a_job_runs_in_its_image_with_its_mount_working_directory_and_variables(containers: ContainerCli,
                                                                                 tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("from the host\n")
    script = "cat /data/in.txt > /data/out.txt && echo copied by $GREETING >> /data/out.txt && pwd && cat index.html"
    containers.runai("submit", "files", "-i", containers.image, "-v", f"{shared}:/data", "--working-dir", "/www",
                     "-e", "GREETING=busybox", "--", "sh", "-c", script)
    job = containers.wait_status("files", "Succeeded", "Failed")
    logs = containers.runai("logs", "files").stdout
    assert job.status == "Succeeded", logs
    assert (shared / "out.txt").read_text() == "from the host\ncopied by busybox\n"
    assert logs == "/www\nserved from a runai-lite container\n"  # the image's own directory and file
    containers.delete("files")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _index_page(port: int, silence: str) -> bytes:
    """The image's index page on 127.0.0.1:`port`, once something answers there."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5).read()
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline, silence
            time.sleep(0.2)


def test_a_published_port_is_reachable_and_delete_removes_the_container(containers: ContainerCli):
    port = _free_port()
    containers.runai("submit", "web", "-i", containers.image, "--port", f"{port}:8080", "--",
                     "httpd", "-f", "-p", "8080", "-h", "/www")
    containers.wait_status("web", "Running")
    job_id = containers.job_id("web")
    wait_present(job_id)
    page = _index_page(port, "the published port never answered")
    assert page == b"served from a runai-lite container\n"
    containers.delete("web")
    wait_gone(job_id)


def test_exec_bash_and_attach_reach_into_the_container(containers: ContainerCli):
    containers.runai("submit", "box", "-i", containers.image, "-e", "GREETING=hi", "--", "sleep", "600")
    containers.runai("submit", "talk", "-i", containers.image, "--backoff-limit", "0", "--",
                     "sh", "-c", "echo first; sleep 1; echo second; exit 3")
    try:
        containers.wait_status("box", "Running")
        assert containers.runai("exec", "box", "--", "cat", "/www/index.html").stdout == \
            "served from a runai-lite container\n"
        script = 'test -t 0 && test -t 1 && echo "terminal $GREETING"; read word; echo "got $word"; exit 5'
        code, shown = in_terminal(containers, "exec", "box", "-it", "--", "sh", "-c", script, typed=b"typed\n")
        assert code == 5 and "terminal hi" in shown and "got typed" in shown, shown
        code, shown = in_terminal(containers, "bash", "box", typed=b'echo "in $RUNAI_JOB_NAME at $(pwd)"; exit 4\n')
        assert code == 4 and "in box at /" in shown, shown
        attached = containers.runai("attach", "talk", check=False)
        assert attached.returncode == 3, attached.stderr
        assert attached.stdout == "first\nsecond\n"
    finally:
        containers.delete("box", "talk")


def test_delete_and_preemption_stop_the_container_and_free_the_gpu(containers: ContainerCli):
    containers.runai("submit", "train", "-p", "team-b", "-i", containers.image, "--gpu", "2", "--", "sleep", "600")
    try:
        containers.wait_status("train", "Running", project="team-b")
        trained = containers.job_id("train", "team-b")
        wait_present(trained)
        containers.runai("submit", "build", "-i", containers.image, "--gpu", "1", "--interactive", "--",
                         "sleep", "600")
        containers.wait_status("build", "Running")  # only once the preempted job's container stopped
        train = containers.jobs()["train"]
        assert train["status"] == "Pending", train
        assert not container_exists(trained)  # stopped and removed, not left running beside the new job
        built = containers.job_id("build")
        wait_present(built)
        containers.delete("build")
        wait_gone(built)
        restarted = containers.wait_status("train", "Running", project="team-b")  # requeued, not lost
        assert restarted.attempts == 2
        rerun = containers.job_id("train", "team-b")
        wait_present(rerun)
        containers.delete("train", project="team-b")
        wait_gone(rerun)
        gpus = [gpu for node in containers.nodes() for gpu in node["gpus"]]
        assert all(gpu["whole_job"] is None and not gpu["fractions"] for gpu in gpus), gpus
    finally:
        containers.delete("build")
        containers.delete("train", project="team-b")


def test_gpus_reach_the_container_by_cdi_where_a_spec_names_them_else_by_the_variable(containers: ContainerCli):
    if containers.cdi_specs is None:
        pytest.skip("no mount namespace for the test's CDI specs here (needs root and util-linux)")
    first, second = gpu_uuids(containers)
    write_cdi_spec(containers.cdi_specs, [first])  # the second GPU is in no spec
    # CDI's variables are the container's process's own, so the job prints them (exec would not see them)
    show = "echo visible=$NVIDIA_VISIBLE_DEVICES cdi=$CDI_GPU; ls /dev/nvidia0 2>/dev/null || echo no-device"
    for name in ("g1", "g2"):
        containers.runai("submit", name, "-i", containers.image, "--gpu", "1", "--", "sh", "-c", f"{show}; sleep 600")
    try:
        seen = {}
        for name in ("g1", "g2"):
            containers.wait_status(name, "Running")
            deadline = time.monotonic() + WAIT_SECONDS
            while len(seen.get(name, ())) < 3 and time.monotonic() < deadline:
                seen[name] = containers.runai("logs", name).stdout.split()
        assert sorted(seen.values()) == sorted([
            [f"visible={first}", f"cdi={first}", "/dev/nvidia0"],  # --device nvidia.com/gpu=UUID, applied by podman
            [f"visible={second}", "cdi=", "no-device"],  # the variable the toolkit's hook reads
        ]), seen
    finally:
        (containers.cdi_specs / "runai-lite-test.json").unlink(missing_ok=True)
        containers.delete("g1", "g2")


def test_an_image_that_cannot_be_pulled_says_so(containers: ContainerCli):
    # nothing listens on this registry: the pull fails at once, as it would offline
    containers.runai("submit", "nopull", "-i", "localhost:1/runai-lite/missing:1", "--backoff-limit", "0", "--",
                     "true")
    containers.wait_status("nopull", "Failed")
    described = containers.describe("nopull")
    exited = [e["message"] for e in described["events"] if e["kind"] == "Exited"]
    assert described["exit_code"] == 125 and len(exited) == 1, described
    assert exited[0].startswith("exit code 125: podman could not create the container: "), exited
    assert "localhost:1/runai-lite/missing" in exited[0], exited  # the runtime's own error, not a guess
    containers.delete("nopull")


def test_exec_of_what_the_container_lacks_or_cannot_run_keeps_the_exit_code_rule(containers: ContainerCli):
    containers.runai("submit", "lacks", "-i", containers.image, "--", "sleep", "600")
    try:
        containers.wait_status("lacks", "Running")
        wait_present(containers.job_id("lacks"))
        missing = containers.runai("exec", "lacks", "--", "nosuchprog", check=False)
        assert missing.returncode == 2, missing.stderr  # as the process backend: retype it
        assert missing.stderr.startswith("Error: nosuchprog: command not found\n"), missing.stderr
        assert "OCI" not in missing.stderr  # said once, our way, not the runtime's line as well
        denied = containers.runai("exec", "lacks", "--", "/www/index.html", check=False)
        assert denied.returncode == 1 and "cannot run /www/index.html: permission denied" in denied.stderr, denied
        own = containers.runai("exec", "lacks", "--", "sh", "-c", "nosuch", check=False)
        assert own.returncode == 127 and "nosuch: not found" in own.stderr  # the program's own 127 passes
    finally:
        containers.delete("lacks")


def test_suspend_stops_the_container_and_frees_its_gpu_and_resume_runs_it_again(containers: ContainerCli):
    containers.runai("submit", "nap", "-i", containers.image, "--gpu", "1", "--", "sleep", "600")
    try:
        containers.wait_status("nap", "Running")
        first = containers.job_id("nap")
        wait_present(first)
        containers.runai("suspend", "nap")
        assert containers.jobs()["nap"]["status"] == "Suspended"
        wait_gone(first)  # stopped and removed, not left running
        gpus = [gpu for node in containers.nodes() for gpu in node["gpus"]]
        assert all(gpu["whole_job"] is None for gpu in gpus), gpus
        containers.runai("resume", "nap")
        resumed = containers.wait_status("nap", "Running")
        assert resumed.attempts == 2
        wait_present(resumed.id)
        assert containers.runai("exec", "nap", "--", "echo", "back").stdout == "back\n"
    finally:
        containers.delete("nap")


def test_port_forward_reaches_the_port_podman_published(containers: ContainerCli):
    # --port 8080 alone: podman chooses the host port, and port-forward asks it which (`podman port`)
    containers.runai("submit", "site", "-i", containers.image, "--port", "8080", "--",
                     "httpd", "-f", "-p", "8080", "-h", "/www")
    forward = None
    try:
        containers.wait_status("site", "Running")
        wait_present(containers.job_id("site"))
        forward = subprocess.Popen([sys.executable, "-m", "runai_lite.cli.runai", "port-forward", "site", "--port",
                                    "0:8080"], env=containers.env, cwd=containers.home, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        line = forward.stdout.readline()
        assert line.startswith("Forwarding from 127.0.0.1:") and line.endswith(" -> 8080\n"), (
            line, forward.stderr.read() if forward.poll() is not None else "")
        local = int(line.split()[2].rpartition(":")[2])
        page = _index_page(local, "the forwarded port never answered")
        assert page == b"served from a runai-lite container\n"
        unpublished = containers.runai("port-forward", "site", "--port", "0:9090", check=False)
        assert unpublished.returncode == 2 and "does not publish port 9090" in unpublished.stderr
    finally:
        if forward is not None:
            forward.send_signal(signal.SIGINT)
            assert forward.wait(timeout=30) == 130
        containers.delete("site")
