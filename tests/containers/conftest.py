"""Real podman for the container tests: a test image built from Debian's busybox-static (no registry
is reachable), made once and kept in podman's store, and an embedded runai-lite whose jobs run in
it. Everything skips, saying why, where podman cannot run a container here.

The CDI test needs podman to read a spec this test wrote. Podman 4.3 (Debian 12) reads CDI specs
only from /etc/cdi and /var/run/cdi (no `--cdi-spec-dir`, no `cdi_spec_dirs` in containers.conf),
so the daemon is started in a mount namespace of its own where the test's spec directory is
mounted on /run/cdi: the daemon and the podman it runs see the spec, the machine does not."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runai_lite.backends.local.container_host import container_host, read_facts
from runai_lite.backends.local.store import JobRow, Store
from tests.e2e.cli_harness import WAIT_SECONDS, Cli

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "sleep", "ls", "env", "pwd", "httpd", "test", "id", "true", "false")
IMAGE_RECIPE = 2  # bump when the image's contents change
CDI_DIR = Path("/run/cdi")  # /var/run/cdi, one of the two directories podman 4.3 reads


def _why_no_podman() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (apt-get install podman runc busybox-static)"
    if not BUSYBOX.is_file():
        return "no static busybox to build the test image from (apt-get install busybox-static)"
    done = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        return f"`podman info` fails here: {done.stderr.strip()[-300:]}"
    return None


def _rootfs_tar(path: Path) -> None:
    """A root filesystem of busybox and its applets, a `bash` that is busybox's shell (for `runai
    bash`), and a page for the port test."""
    def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), mode, 0
        tar.addfile(info, fileobj=__import__("io").BytesIO(data))

    with tarfile.open(path, "w") as tar:
        for directory in ("bin", "tmp", "www", "data", "root", "etc", "dev", "proc", "sys"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o1777 if directory == "tmp" else 0o755, 0
            tar.addfile(info)
        add_file(tar, "bin/busybox", BUSYBOX.read_bytes(), 0o755)
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 0
            tar.addfile(info)
        add_file(tar, "bin/bash", b'#!/bin/sh\nexec /bin/sh "$@"\n', 0o755)
        add_file(tar, "www/index.html", b"served from a runai-lite container\n", 0o644)
        add_file(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)


@pytest.fixture(scope="session")
def podman_image(tmp_path_factory) -> str:
    """The test image's name, imported once per busybox binary and recipe (podman keeps it)."""
    reason = _why_no_podman()
    if reason:
        pytest.skip(reason)
    digest = hashlib.sha256(BUSYBOX.read_bytes() + str(IMAGE_RECIPE).encode()).hexdigest()[:12]
    image = f"localhost/runai-lite-test:{digest}"
    if subprocess.run(["podman", "image", "exists", image], capture_output=True, check=False).returncode != 0:
        tar = tmp_path_factory.mktemp("image") / "rootfs.tar"
        _rootfs_tar(tar)
        done = subprocess.run(["podman", "import", str(tar), image], capture_output=True, text=True, timeout=120,
                              check=False)
        if done.returncode != 0:
            pytest.skip(f"`podman import` fails here: {done.stderr.strip()[-300:]}")
    host = container_host(read_facts("podman"))
    trial = subprocess.run(host.command("run", "--rm", *host.run_options, image, "true"), capture_output=True,
                           text=True, timeout=120, check=False)
    if trial.returncode != 0:
        pytest.skip(f"podman cannot run a container here even with {' '.join(host.command())} "
                    f"{' '.join(host.run_options)}: {trial.stderr.strip()[-300:]}")
    return image


class ContainerCli(Cli):
    """A `Cli` whose jobs run in podman, its daemon possibly in a mount namespace of its own."""

    def __init__(self, home: Path, image: str, cdi_specs: Path | None):
        super().__init__(home)
        self.image = image
        self.cdi_specs = cdi_specs  # mounted on /run/cdi for the daemon, when it could be
        self.env["RUNAI_LITE_RUNTIME"] = "podman"
        self._store: Store | None = None

    def start(self, *init_args: str) -> None:
        """`runai-adm local init`, which starts the daemon: in its own mount namespace when there is
        a CDI spec directory to give it."""
        module = [sys.executable, "-m", "runai_lite.cli.runai_adm", "local", "init", *init_args]
        argv = module
        if self.cdi_specs is not None:
            script = ('mount --make-private "$(findmnt -n -o TARGET -T "$2")" && mount --bind "$1" "$2" && '
                      'shift 2 && exec "$@"')
            argv = ["unshare", "--mount", "--propagation", "unchanged", "sh", "-c", script, "sh",
                    str(self.cdi_specs), str(CDI_DIR), *module]
        done = subprocess.run(argv, env=self.env, cwd=self.home, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"local init failed:\n{done.stdout}\n{done.stderr}"

    def store(self) -> Store:
        """The home's store, read in this process: waiting and looking up ids is the test's own
        business, and a `runai list` per poll would cost a Python start-up each."""
        if self._store is None:
            self._store = Store(self.home / "state.db")
        return self._store

    def job_id(self, name: str, project: str = "team-a") -> str:
        row = self.store().live_job(project, name)
        assert row is not None, f"no job {project}/{name}"
        return row.id

    def wait_status(self, name: str, *statuses: str, project: str | None = None) -> JobRow:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            rows = [row for row in self.store().live_jobs(project) if row.name == name]
            if rows and rows[0].status in statuses:
                return rows[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {name} to be {'/'.join(statuses)}: "
                                     f"{rows[0].status if rows else 'no such job'}\n{self.daemon_log()}")
            time.sleep(0.1)

    def delete(self, *names: str, project: str = "team-a") -> None:
        """`runai delete job`, which returns once the jobs' processes are gone."""
        self.runai("delete", "job", *names, "-p", project, check=False)


def container_exists(job_id: str) -> bool:
    return subprocess.run(["podman", "container", "exists", f"runai-lite-{job_id}"], check=False).returncode == 0


def wait_present(job_id: str) -> None:
    """Until the job's container exists: a job is Running from the moment its `podman run` starts."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not container_exists(job_id):
        assert time.monotonic() < deadline, f"container runai-lite-{job_id} never appeared"
        time.sleep(0.1)


def wait_gone(job_id: str) -> None:
    """Until the job's container is removed (`--rm` after it stopped)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while container_exists(job_id):
        assert time.monotonic() < deadline, f"container runai-lite-{job_id} is still there"
        time.sleep(0.2)


def _cdi_namespace_possible() -> str | None:
    if os.geteuid() != 0:
        return "needs root: the daemon's mount namespace with the test's CDI specs on /run/cdi"
    if not all(shutil.which(tool) for tool in ("unshare", "findmnt", "mount")):
        return "needs unshare, findmnt and mount (util-linux)"
    return None


@pytest.fixture(scope="module")
def containers(podman_image, tmp_path_factory) -> Iterator[ContainerCli]:
    """An embedded runai-lite on two simulated T4s running its jobs in podman; its daemon reads CDI
    specs from `cli.cdi_specs` when that is not None."""
    base = tmp_path_factory.mktemp("containers")
    specs: Path | None = base / "cdi"
    made_cdi_dir = False
    if _cdi_namespace_possible() is None:
        specs.mkdir()
        if not CDI_DIR.exists():
            CDI_DIR.mkdir(mode=0o755, parents=True)
            made_cdi_dir = True
    else:
        specs = None
    cli = ContainerCli(base / "home", podman_image, specs)
    try:
        cli.start("--simulate", "T4:2")
        cli.adm("project", "create", "team-a", "--deserved-gpus", "2")
        cli.adm("project", "create", "team-b", "--deserved-gpus", "0")
        cli.runai("config", "project", "team-a")
        yield cli
    finally:
        cli.shut_down()
        if cli._store is not None:
            cli._store.close()
        if made_cdi_dir:
            try:
                CDI_DIR.rmdir()
            except OSError:
                pass


def gpu_uuids(cli: Cli) -> list[str]:
    return [gpu["uuid"] for node in cli.nodes() for gpu in node["gpus"]]


def write_cdi_spec(directory: Path, uuids: list[str]) -> None:
    """A CDI spec as `nvidia-ctk cdi generate --device-name-strategy=uuid` shapes one, for simulated
    GPUs: each device shows up in the container as /dev/nvidiaN (a stand-in device node) and a
    variable naming it, so a test can see that podman applied it."""
    devices = [{"name": uuid, "containerEdits": {
        "env": [f"CDI_GPU={uuid}"], "deviceNodes": [{"path": f"/dev/nvidia{index}", "hostPath": "/dev/null"}]}}
        for index, uuid in enumerate(uuids)]
    spec = {"cdiVersion": "0.5.0", "kind": "nvidia.com/gpu", "devices": devices,
            "containerEdits": {"env": ["NVIDIA_CDI_SPEC=runai-lite-test"]}}
    (directory / "runai-lite-test.json").write_text(json.dumps(spec))
