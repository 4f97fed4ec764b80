"""`LocalBackend`: the `Backend` the CLI uses on the embedded default.

A command talks to the store directly (one short transaction) and wakes the daemon; it never waits
for scheduling, except `delete`, which waits (up to the grace period) for the job's processes to
stop so that its name is free again when the command returns. Every method first makes sure a
daemon serves the home, restarting one that died.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from ...errors import NotFoundError, OperationalError, UserError
from ...model import JobSpec, JobStatus, dns1123_problem
from ..api import Event, JobInfo, NodeView, ProjectInfo
from . import events as ev
from .control import ensure_daemon, wake
from .identity import current_submitter
from .paths import Home
from .runner import PROCESS, container_name, probe_container_runtime
from .store import Store
from .views import node_views, project_infos

RUNTIME_PROBE_SECONDS = 300.0  # how long a `docker info` answer is trusted
DELETE_WAIT_EXTRA_SECONDS = 5.0
FOLLOW_POLL_SECONDS = 0.2


class LocalBackend:
    name = "local"

    def __init__(self, home: Path | str | None = None):
        self.home = Home.at(home)
        self.store = Store(self.home.db)

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------------------ helpers

    def _daemon(self) -> None:
        ensure_daemon(self.home)

    def _simulated(self) -> bool:
        return bool(self.store.config("simulate"))

    def _row(self, project: str, name: str):
        row = self.store.live_job(project, name)
        if row is None:
            raise NotFoundError(f"job {name} was not found in project {project}",
                                f"run `runai list jobs -p {project}` to see its jobs")
        return row

    def _runtime(self) -> str:
        """`docker`/`podman` when one answers, else `process`; the answer is cached in the store."""
        if not any(shutil.which(r) for r in ("docker", "podman")):
            return PROCESS
        cached = self.store.config("runtime_probe")
        if cached and time.time() - cached["at"] < RUNTIME_PROBE_SECONDS:
            return cached["runtime"]
        runtime = probe_container_runtime() or PROCESS
        with self.store.write() as conn:
            self.store.set_config(conn, "runtime_probe", {"runtime": runtime, "at": time.time()})
        return runtime

    # ------------------------------------------------------------------------------ Backend

    def current_user(self) -> str:
        """The account of the effective uid: $USER and $LOGNAME are not asked, since anyone can set
        them (`USER=alice runai logs ...` must not read alice's logs)."""
        try:
            return pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            return str(os.geteuid())

    def _check_owner(self, row, what: str) -> None:
        """Only the user who submitted a job (or root) reads its logs or runs commands in it."""
        if row.user != self.current_user() and os.geteuid() != 0:
            raise UserError(f"job {row.name} belongs to {row.user}; you are {self.current_user()}",
                            f"only the user who submitted a job, or root, can {what}")

    def submit(self, spec: JobSpec) -> JobInfo:
        self._daemon()
        if spec.project not in {p.name for p in self.store.projects()}:
            raise NotFoundError(f"project {spec.project} was not found",
                                f"create it: runai-adm project create {spec.project} --deserved-gpus 1 "
                                "(`runai list projects` shows the existing ones)")
        runtime = self._runtime()
        if runtime == PROCESS:
            spec = self._direct_spec(spec)
        submitter = current_submitter()
        user = submitter.user
        now = time.time()
        with self.store.write() as conn:
            row = self.store.insert_job(conn, spec, user, runtime, now, submitter)
            self.store.add_event(conn, row.id, ev.SUBMITTED, f"submitted by {user}", now)
            if runtime == PROCESS:
                self.store.add_event(conn, row.id, ev.IMAGE_NOT_USED,
                                     f"no usable docker or podman: the command runs directly on this machine and "
                                     f"the image {spec.image} is not used", now)
        wake(self.home)
        return row.to_info(self.store.events(row.id), self._simulated())

    @staticmethod
    def _direct_spec(spec: JobSpec) -> JobSpec:
        """Checks for a job run without a container: it needs a command, and a working directory
        that exists (by default, the directory it was submitted from)."""
        if not spec.command:
            raise UserError(
                f"nothing to run: no command after -- and no usable docker or podman to run the image {spec.image}",
                f"give the command after --, e.g. runai submit {spec.name} -i {spec.image} -- python train.py, "
                "or install docker or podman")
        if spec.working_dir is None:
            try:
                return spec.model_copy(update={"working_dir": os.getcwd()})
            except FileNotFoundError:
                raise UserError("the current directory no longer exists",
                                "cd to an existing directory, or give --working-dir") from None
        if not Path(spec.working_dir).is_dir():
            raise UserError(f"--working-dir {spec.working_dir} is not a directory on this machine",
                            "give an existing directory (the job runs directly, without a container)")
        return spec

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        self._daemon()
        simulated = self._simulated()
        return [row.to_info(simulated=simulated) for row in self.store.live_jobs(project)]

    def get_job(self, project: str, name: str) -> JobInfo:
        self._daemon()
        row = self._row(project, name)
        return row.to_info(self.store.events(row.id), self._simulated())

    def delete_jobs(self, project: str, names: list[str] | None) -> list[str]:
        self._daemon()
        if names is not None:
            rows = [self._row(project, name) for name in dict.fromkeys(names)]
        else:
            rows = self.store.live_jobs(project)
        now = time.time()
        stopping = []
        with self.store.write() as conn:
            for listed in rows:
                row = self.store.job(listed.id, conn)
                if row is None or row.status == JobStatus.DELETED:
                    continue
                if row.status in (JobStatus.RUNNING, JobStatus.PREEMPTED):
                    if not row.delete_requested:
                        self.store.update_job(conn, row.id, delete_requested=1, stop_sent_at=None)
                        self.store.add_event(conn, row.id, ev.DELETED, "delete requested: stopping its process", now)
                    stopping.append(row.id)
                else:
                    self.store.update_job(conn, row.id, status=JobStatus.DELETED.value, allocation=None,
                                          delete_requested=1, finished_at=row.finished_at or now)
                    self.store.add_event(conn, row.id, ev.DELETED, "deleted", now)
        wake(self.home)
        self._wait_stopped(stopping)
        return [row.name for row in rows]

    def _wait_stopped(self, job_ids: list[str]) -> None:
        if not job_ids:
            return
        grace = float(self.store.config("grace_seconds", 10.0))
        deadline = time.monotonic() + grace + DELETE_WAIT_EXTRA_SECONDS
        while time.monotonic() < deadline:
            left = self.store.live_jobs_among(job_ids)
            if not left:
                return
            time.sleep(0.02)

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None) -> Iterator[str]:
        self._daemon()
        row = self._row(project, name)
        self._check_owner(row, "read its logs")
        return self._log_lines(row.id, follow, tail)

    def _log_lines(self, job_id: str, follow: bool, tail: int | None) -> Iterator[str]:
        path = self.home.job_log(job_id)
        while follow and not path.exists():
            if self._finished(job_id):
                return
            time.sleep(FOLLOW_POLL_SECONDS)
        try:
            handle = path.open("r", errors="replace")
        except FileNotFoundError:
            return
        with handle:
            lines = deque(handle, maxlen=tail) if tail is not None else handle
            for line in lines:
                yield line.rstrip("\n")
            if not follow:
                return
            partial = ""
            while True:
                chunk = handle.readline()
                if chunk:
                    partial += chunk
                    if partial.endswith("\n"):
                        yield partial.rstrip("\n")
                        partial = ""
                    continue
                if self._finished(job_id):
                    rest = handle.read()
                    for line in (partial + rest).splitlines():
                        yield line
                    return
                time.sleep(FOLLOW_POLL_SECONDS)

    def _finished(self, job_id: str) -> bool:
        row = self.store.job(job_id)
        return row is None or row.job_status.terminal

    def exec(self, project: str, name: str, argv: list[str], tty: bool = False) -> int:
        self._daemon()
        row = self._row(project, name)
        self._check_owner(row, "run commands in it")
        if row.status != JobStatus.RUNNING:
            raise UserError(f"job {name} is {row.status}, not Running", "exec runs commands in a running job only")
        if not argv:
            raise UserError("no command given", f"e.g. runai exec {name} -- nvidia-smi -L")
        if row.runtime == PROCESS:
            spec = row.job_spec
            command, env, cwd = argv, {**os.environ, **row.env()}, spec.working_dir
        else:
            command = [row.runtime, "exec", *(["-it"] if tty else ["-i"]), container_name(row.id), *argv]
            env, cwd = None, None
        try:
            return subprocess.run(command, env=env, cwd=cwd, check=False).returncode
        except FileNotFoundError:
            raise UserError(f"{argv[0]}: command not found", "give a program on PATH or a path to it") from None
        except OSError as error:
            raise OperationalError(f"cannot run {argv[0]}: {error.strerror}") from None

    # ------------------------------------------------------------------------------ projects

    def list_projects(self) -> list[ProjectInfo]:
        return project_infos(self.store)

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo:
        problem = dns1123_problem(name)
        if problem:
            raise UserError(f"invalid project name {name!r}: {problem}", "e.g. team-a")
        if not 0 <= deserved_gpus <= 10_000 or deserved_gpus != deserved_gpus:
            raise UserError(f"invalid --deserved-gpus {deserved_gpus:g}", "give a number of GPUs from 0 up, e.g. 2")
        with self.store.write() as conn:
            if self.store.project_exists(conn, name):
                raise UserError(f"project {name} already exists", "choose another name, or delete it first")
            self.store.insert_project(conn, name, float(deserved_gpus), time.time())
        wake(self.home)
        return ProjectInfo(name=name, deserved_gpus=float(deserved_gpus))

    def delete_project(self, name: str) -> None:
        with self.store.write() as conn:
            if not self.store.project_exists(conn, name):
                raise NotFoundError(f"project {name} was not found", "run `runai list projects` to see them")
            active = self.store.active_jobs(conn, project=name)
            if active:
                names = ", ".join(r.name for r in active[:5]) + (" ..." if len(active) > 5 else "")
                raise UserError(f"project {name} has {len(active)} active job(s): {names}",
                                f"delete them first: runai delete job --all -p {name}")
            self.store.delete_project(conn, name)
        wake(self.home)

    # ------------------------------------------------------------------------------ nodes

    def list_nodes(self) -> list[NodeView]:
        self._daemon()
        return node_views(self.store)

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        self._daemon()
        known = self.store.config("node")
        if node != known:
            raise NotFoundError(f"node {node} was not found", f"the embedded node is {known} (runai list nodes)")
        with self.store.write() as conn:
            gpus = self.store.gpus(node, conn)
            capable = [g for g in gpus if g.mig_capable]
            if not capable:
                raise UserError(f"no GPU on {node} supports MIG", "dynamic MIG needs A100, A30, H100 or H200 GPUs")
            if enabled:
                self._check_can_enable(conn, node, capable)
            else:
                self._check_can_disable(conn, node, capable)
            for gpu in capable:
                self.store.set_dynamic_mig(conn, node, gpu.gpu_index, enabled)
        wake(self.home)

    def _check_can_enable(self, conn, node: str, capable) -> None:
        off = [g for g in capable if not g.mig_enabled]
        if off:
            indices = ", ".join(str(g.gpu_index) for g in off)
            hint = ("declare it with MIG mode on: runai-adm local init --simulate MODEL:COUNT" if off[0].simulated
                    else f"enable it as root: nvidia-smi -i {off[0].gpu_index} -mig 1 (then reset the GPU or reboot); "
                    "runai-lite notices within 10 s")
            raise UserError(f"MIG mode is off on GPU {indices} of {node}", hint)
        indices = {g.gpu_index for g in capable if not g.dynamic_mig}
        users = [r for r in self.store.active_jobs(conn) if r.alloc and r.alloc.kind != "mig"
                 and indices.intersection(r.alloc.gpu_indices)]
        if users:
            raise UserError(f"jobs hold whole GPUs or fractions on {node}: {', '.join(r.key for r in users)}",
                            "wait for them to finish or delete them, then mark the node again")

    def _check_can_disable(self, conn, node: str, capable) -> None:
        indices = {g.gpu_index for g in capable}
        users = [r for r in self.store.active_jobs(conn) if r.alloc and r.alloc.kind == "mig"
                 and indices.intersection(r.alloc.gpu_indices)]
        if users:
            raise UserError(f"removing dynamic MIG from {node} would strand running MIG jobs: "
                            f"{', '.join(r.key for r in users)}",
                            "wait for them to finish or delete them (runai delete job NAME), then try again")

    # ------------------------------------------------------------------------------ events

    def events(self, project: str, name: str) -> tuple[Event, ...]:
        return self.store.events(self._row(project, name).id)
