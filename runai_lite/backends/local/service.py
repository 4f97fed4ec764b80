"""What a command asks of the embedded mode, done on the store for one caller: submit, list,
describe, delete, logs, exec, projects and node roles, with the owner checks.

The same service serves both modes. In personal mode the CLI calls it in its own process (the
caller is that process, the owner of the home). In system mode the socket server calls it in the
daemon for each request, with the caller the kernel named (`identity.peer_caller`). Who may do what:

- anyone may list and describe jobs, projects and nodes (as on a Run:ai cluster);
- a job's submitter, and the home's administrator, may delete it, read its logs and exec in it;
- the administrator (root, or in personal mode the home's owner) creates and deletes projects and
  sets node roles.

A refused request changes nothing. The service never starts or waits for a daemon: in system mode
it runs inside one, in personal mode the client makes sure one runs.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import time
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...errors import NotFoundError, OperationalError, RunaiLiteError, UserError
from ...gpu.fit import never_fits
from ...kinds import check_name
from ...model import JobSpec, JobStatus, text_problem
from ...submission.flags import SubmitFlags, SubmitReceipt
from ...submission.spec import submit_from_flags
from ..api import Event, JobInfo, JobUsage, NodeView, ProjectInfo
from ..attempts import attempt_lines
from ..summary import JobSummary
from . import events as ev
from . import joblog
from .control import wake
from .flag_support import check_embedded, embedded_notes
from .job_summaries import job_summaries
from .container_host import ContainerHost, container_host_key
from .identity import Caller
from .paths import Home
from .runner import (CONTAINER_RUNTIMES, PROCESS, RUNTIME_VARIABLE, container_name, probe_container_runtime,
                     published_host_port)
from .store import JobRow, Store
from .views import node_views, project_infos

if TYPE_CHECKING:
    from .mig_mode import MigModeSwitch

RUNTIME_PROBE_SECONDS = 300.0  # how long a `docker info` answer is trusted
DELETE_WAIT_EXTRA_SECONDS = 5.0
FOLLOW_POLL_SECONDS = 0.2

# The service's operations a client may call over a daemon's socket (every one on the machine-wide
# daemon's; a personal daemon's owner sends `submit_flags`), and which of them answer with a stream
# of lines. `submit_flags` and `job_summaries` go as plain JSON, so that `runai submit` and
# `runai list` load no models.
OPERATIONS = frozenset({"submit", "submit_flags", "list_jobs", "job_summaries", "get_job", "delete_jobs",
                        "suspend_job", "resume_job", "top_jobs", "logs", "exec_target", "forward_target",
                        "list_projects", "create_project", "delete_project", "list_nodes", "set_dynamic_mig",
                        "set_node_type", "events"})
STREAMING = frozenset({"logs"})


def operation_types(op: str) -> tuple[dict[str, Any], Any]:
    """The parameter types and the return type of operation `op`, from its signature: the one
    definition the client and the server encode and decode by."""
    hints = typing.get_type_hints(getattr(LocalService, op))
    result = hints.pop("return")
    return hints, result


class SubmitContext(BaseModel):
    """What the client says about its own process at submit: the job runs with these."""

    model_config = ConfigDict(frozen=True)

    cwd: str
    umask: int = Field(ge=0, le=0o777)
    env: dict[str, str]

    @model_validator(mode="after")
    def _text(self) -> SubmitContext:
        for text in (self.cwd, *(f"{key}={value}" for key, value in self.env.items())):
            problem = text_problem(text)
            if problem:
                raise ValueError(f"invalid submit context {text!r}: {problem}")
        return self


class DeleteOutcome(BaseModel):
    """Jobs deleted, and jobs whose processes had not exited when the wait ended (the daemon
    deletes them once they exit)."""

    model_config = ConfigDict(frozen=True)

    deleted: list[str]
    stopping: list[str]


class SuspendOutcome(BaseModel):
    """The job after `suspend`, and whether its processes were still stopping when the wait ended
    (the daemon suspends it once they are gone)."""

    model_config = ConfigDict(frozen=True)

    job: JobInfo
    stopping: bool


class ForwardTarget(BaseModel):
    """Where a connection to a job's port goes on this machine."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int


class ExecTarget(BaseModel):
    """Where `runai exec` runs a command: the job's container, or its environment and directory."""

    model_config = ConfigDict(frozen=True)

    runtime: str
    container: str
    env: dict[str, str]
    cwd: str | None
    runtime_command: list[str] = []  # the runtime with the options the daemon started the container with


class LocalService:
    def __init__(self, home: Home, store: Store, whoami: Callable[[], Caller], personal: bool = False):
        self.home = home
        self.store = store
        self._whoami = whoami
        self._admin_uid = home.root.stat().st_uid
        # A personal home's owner chooses its runtime with their own environment ($RUNAI_LITE_RUNTIME,
        # $PATH), also when the daemon serves their request; on the machine-wide daemon the admin's counts.
        self._personal = personal

    # ------------------------------------------------------------------------------ who may

    @property
    def caller(self) -> Caller:
        return self._whoami()

    def _is_admin(self, caller: Caller) -> bool:
        return caller.is_root or caller.uid == self._admin_uid

    def _require_admin(self, what: str) -> None:
        caller = self.caller
        if not self._is_admin(caller):
            raise UserError(f"only root can {what} on this machine's shared runai-lite; you are {caller.user}",
                            "ask an administrator (sudo runai-adm ...)")

    def _owns(self, caller: Caller, row: JobRow) -> bool:
        if row.submitter is not None:
            return row.submitter.uid == caller.uid
        return row.user == caller.user  # a job submitted before submitters were recorded

    def _require_owner(self, row: JobRow, what: str) -> None:
        caller = self.caller
        if not (self._owns(caller, row) or self._is_admin(caller)):
            raise UserError(f"job {row.name} belongs to {row.user}; you are {caller.user}",
                            f"only the user who submitted a job, or root, can {what}")

    # ------------------------------------------------------------------------------ helpers

    def _simulated(self) -> bool:
        return bool(self.store.config("simulate"))

    def _row(self, project: str, name: str) -> JobRow:
        row = self.store.live_job(project, name)
        if row is None:
            raise NotFoundError(f"job {name} was not found in project {project}",
                                f"run `runai list jobs -p {project}` to see its jobs")
        return row

    def _runtime(self, context: SubmitContext) -> str:
        """`docker`/`podman` when one answers, else `process`; the answer is cached in the store.
        `$RUNAI_LITE_RUNTIME` (`process`, `podman`, `docker`) chooses instead of probing."""
        environ = context.env if self._personal else os.environ
        chosen = environ.get(RUNTIME_VARIABLE)
        if chosen:
            if chosen not in (PROCESS, *CONTAINER_RUNTIMES):
                raise UserError(f"${RUNTIME_VARIABLE}={chosen} names no runtime",
                                f"set it to one of {', '.join((PROCESS, *CONTAINER_RUNTIMES))}, or unset it to probe")
            return chosen
        if not any(shutil.which(r, path=environ.get("PATH")) for r in ("docker", "podman")):
            return PROCESS
        cached = self.store.config("runtime_probe")
        if cached and time.time() - cached["at"] < RUNTIME_PROBE_SECONDS:
            return cached["runtime"]
        runtime = probe_container_runtime() or PROCESS
        with self.store.write() as conn:
            self.store.set_config(conn, "runtime_probe", {"runtime": runtime, "at": time.time()})
        return runtime

    # ------------------------------------------------------------------------------ jobs

    def submit_flags(self, flags: SubmitFlags, context: SubmitContext) -> SubmitReceipt:
        """`runai submit` as typed: the flags checked and made a spec here (`submission/spec.py`), so
        that the CLI sends them without loading the models."""
        return submit_from_flags(flags, self.caller.user,
                                 lambda: (row.name for row in self.store.live_jobs(flags.project)),
                                 lambda spec: self.submit(spec, context))

    def submit(self, spec: JobSpec, context: SubmitContext) -> JobInfo:
        if spec.project not in {p.name for p in self.store.projects()}:
            raise NotFoundError(f"project {spec.project} was not found",
                                f"create it: runai-adm project create {spec.project} --deserved-gpus 1 "
                                "(`runai list projects` shows the existing ones)")
        self._check_could_ever_fit(spec)
        submitter = self.caller.submitter(context.env, context.cwd, context.umask)
        runtime = self._runtime(context)
        check_embedded(spec, runtime)
        if runtime == PROCESS:
            spec = _direct_spec(spec, submitter.cwd)
        now = time.time()
        with self.store.write() as conn:
            row = self.store.insert_job(conn, spec, submitter.user, runtime, now, submitter)
            self.store.add_event(conn, row.id, ev.SUBMITTED, f"submitted by {submitter.user}", now)
            if runtime == PROCESS:
                self.store.add_event(conn, row.id, ev.IMAGE_NOT_USED,
                                     f"no usable docker or podman: the command runs directly on this machine and "
                                     f"the image {spec.image} is not used", now)
            for note in embedded_notes(spec, runtime):
                self.store.add_event(conn, row.id, ev.NOT_APPLICABLE, note, now)
        wake(self.home)
        return row.to_info(self.store.events(row.id), self._simulated(), self.store.config("node"))

    def _check_could_ever_fit(self, spec: JobSpec) -> None:
        """Refuse what no GPU of this machine could ever hold, whatever else runs (before the daemon
        has published its GPUs nothing is known, and nothing is refused)."""
        node = self.store.config("node")
        gpus = self.store.gpus(node) if node else []
        if not gpus:
            return
        refusal = never_fits(spec.request, {node: [(g.model, g.memory_mib) for g in gpus]})
        if refusal is not None:
            raise UserError(refusal.message, refusal.hint)

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        simulated = self._simulated()
        node = self.store.config("node")
        return [row.to_info(simulated=simulated, node=node) for row in self.store.live_jobs(project)]

    def job_summaries(self, project: str | None) -> list[JobSummary]:
        """What `runai list` shows of the jobs, read as a personal home's `runai list` reads them
        (`job_summaries.py`), for a client that then needs no models to show them."""
        return job_summaries(self.home.db, project)

    def get_job(self, project: str, name: str) -> JobInfo:
        row = self._row(project, name)
        return row.to_info(self.store.events(row.id), self._simulated(), self.store.config("node"),
                           self.store.attempts(row.id))

    def top_jobs(self, project: str | None) -> list[JobUsage]:
        """Unfinished jobs with their processes on their GPU devices (the daemon registers a job's
        supervisor with a simulated GPU, so its pid counts as the job's too)."""
        from ...gpu.drivers import open_driver  # only this command asks the GPU driver
        from .consistency import live_job_processes
        from .usage import job_usage

        simulated = self._simulated()
        rows = [row for row in self.store.live_jobs(project) if not row.job_status.terminal]
        running = [row for row in rows if row.status in (JobStatus.RUNNING, JobStatus.PREEMPTED)]
        pids = live_job_processes(row.id for row in running)
        for row in running:
            if row.pid is not None:
                pids.setdefault(row.id, []).append(row.pid)
        driver, why = None, None
        if running:
            try:
                driver = open_driver(self.home.root)
            except RunaiLiteError as error:
                why = f"the GPU driver could not be opened: {error}"
        try:
            return job_usage([(row.id, row.to_info(simulated=simulated)) for row in rows], driver, pids, why)
        finally:
            if driver is not None:
                driver.close()

    def events(self, project: str, name: str) -> tuple[Event, ...]:
        return self.store.events(self._row(project, name).id)

    def delete_jobs(self, project: str, names: list[str] | None, wait: bool = True) -> DeleteOutcome:
        """Delete the named jobs (refused as a whole if one is another user's), or with `names`
        None every job of the project the caller may delete. With `wait`, returns once their
        processes exited or the grace period (and a margin) passed; those still stopping are named."""
        caller = self.caller
        if names is not None:
            rows = [self._row(project, name) for name in dict.fromkeys(names)]
            for row in rows:
                self._require_owner(row, "delete it")
        else:
            rows = [row for row in self.store.live_jobs(project) if self._owns(caller, row) or self._is_admin(caller)]
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
                        self.store.add_event(conn, row.id, ev.DELETED,
                                             f"delete requested by {caller.user}: stopping its process", now)
                    stopping.append(row.id)
                else:
                    self.store.update_job(conn, row.id, status=JobStatus.DELETED.value, allocation=None,
                                          delete_requested=1, finished_at=row.finished_at or now)
                    self.store.add_event(conn, row.id, ev.DELETED, f"deleted by {caller.user}", now)
        wake(self.home)
        left = self._wait_stopped(stopping) if wait else set(stopping)
        return DeleteOutcome(deleted=[row.name for row in rows if row.id not in left],
                             stopping=[row.name for row in rows if row.id in left])

    def _wait_stopped(self, job_ids: list[str], stopped: Callable[[JobRow], bool] | None = None) -> set[str]:
        """Wait for the jobs' processes to exit (for `stopped` to hold of each job's row; by default
        for the job to be gone); the ids of those that had not when the wait ended."""
        if not job_ids:
            return set()
        grace = float(self.store.config("grace_seconds", 10.0))
        deadline = time.monotonic() + grace + DELETE_WAIT_EXTRA_SECONDS
        while True:
            left = {row.id for row in self.store.live_jobs_among(job_ids) if stopped is None or not stopped(row)}
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.02)

    def suspend_job(self, project: str, name: str) -> SuspendOutcome:
        """Stop the job without losing it: a pending job is set aside at once; a running one is
        stopped as a preemption stops it (SIGTERM, then SIGKILL) and is Suspended, its GPUs free,
        once all of its processes are gone. Waits for that as `delete` does."""
        caller = self.caller
        row = self._row(project, name)
        self._require_owner(row, "suspend it")
        now = time.time()
        with self.store.write() as conn:
            row = self.store.job(row.id, conn)
            assert row is not None
            problem = _cannot_suspend(row)
            if problem:
                raise UserError(*problem)
            if row.status in (JobStatus.RUNNING, JobStatus.PREEMPTED):
                self.store.update_job(conn, row.id, suspend_requested=1)
                self.store.add_event(conn, row.id, ev.SUSPENDED, f"suspend requested by {caller.user}: stopping "
                                     "its processes", now)
            else:
                self.store.update_job(conn, row.id, status=JobStatus.SUSPENDED.value, allocation=None,
                                      pending_reason=None, retry_at=None)
                self.store.add_event(conn, row.id, ev.SUSPENDED, f"suspended by {caller.user} before it started; "
                                     f"it waits for `runai resume {name} -p {project}`", now)
        wake(self.home)
        left = self._wait_stopped([row.id], lambda r: r.status == JobStatus.SUSPENDED)
        return SuspendOutcome(job=self.get_job(project, name), stopping=bool(left))

    def resume_job(self, project: str, name: str) -> JobInfo:
        """Queue a suspended job again: Pending, scheduled as any job; its attempts are kept."""
        caller = self.caller
        row = self._row(project, name)
        self._require_owner(row, "resume it")
        now = time.time()
        with self.store.write() as conn:
            row = self.store.job(row.id, conn)
            assert row is not None
            if row.status != JobStatus.SUSPENDED:
                still = " (it is still stopping for its suspension)" if row.suspend_requested else ""
                raise UserError(f"job {name} is {row.status}{still}, not Suspended",
                                "only a suspended job can be resumed" + (
                                    f"; wait until `runai describe job {name} -p {project}` shows Suspended"
                                    if still else ""))
            self.store.update_job(conn, row.id, status=JobStatus.PENDING.value, retry_at=None,
                                  pending_reason="resumed: waiting for the scheduler")
            self.store.add_event(conn, row.id, ev.RESUMED, f"resumed by {caller.user}: back in the queue", now)
        wake(self.home)
        return self.get_job(project, name)

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None,
             attempt: int | None = None) -> Iterator[str]:
        row = self._row(project, name)
        self._require_owner(row, "read its logs")
        if attempt is None:
            return self._log_lines(row.id, follow, tail)
        if follow:
            raise UserError("--attempt shows one attempt's output as it is now; it cannot be followed",
                            f"drop -f, or follow the whole log: runai logs {name} -p {project} -f")
        numbers = [a.number for a in self.store.attempts(row.id)]
        if attempt not in numbers:
            started = (f"its attempts are {numbers[0]} to {numbers[-1]}" if len(numbers) > 1 else
                       f"its only attempt is {numbers[0]}" if numbers else "it has not started yet")
            raise UserError(f"job {name} has no attempt {attempt}: {started}",
                            f"see them with `runai describe job {name} -p {project}`")
        return self._attempt_lines(row.id, attempt, tail)

    def _attempt_lines(self, job_id: str, number: int, tail: int | None) -> Iterator[str]:
        path = self.home.job_log(job_id)
        try:
            handle = path.open("r", errors="replace")
        except FileNotFoundError:
            return iter(())
        with handle:
            lines = attempt_lines((line.rstrip("\n") for line in handle), number)
            if tail is None:
                return iter(list(lines))
            return iter(collections.deque(lines, maxlen=tail) if tail else ())

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
            if tail is not None:  # read from the end, never the whole file
                lines, end = joblog.tail(path, tail)
                handle.seek(end)
                yield from lines
            else:
                for line in handle:
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
        """Nothing more will be written to its log for now (a suspended job's until resumed)."""
        row = self.store.job(job_id)
        return row is None or row.job_status.terminal or row.status == JobStatus.SUSPENDED

    def exec_target(self, project: str, name: str) -> ExecTarget:
        row = self._row(project, name)
        self._require_owner(row, "run commands in it")
        if row.status != JobStatus.RUNNING:
            raise UserError(f"job {name} is {row.status}, not Running", "exec runs commands in a running job only")
        env = {**(row.submitter.env if row.submitter else {}), **row.env()}
        host = self.store.config(container_host_key(row.runtime)) if row.runtime != PROCESS else None
        command = ContainerHost.from_json(host).command() if host else [row.runtime]
        return ExecTarget(runtime=row.runtime, container=container_name(row.id), env=env,
                          cwd=row.job_spec.working_dir, runtime_command=command)

    def forward_target(self, project: str, name: str, port: int) -> ForwardTarget:
        """Where `runai port-forward` connects for the job's `port`: the port a container publishes
        it on (`--port`; asked of the runtime when it chose the host port), or, for a job run as
        processes on this machine, that port on the loopback address."""
        row = self._row(project, name)
        self._require_owner(row, "forward its ports")
        if row.status != JobStatus.RUNNING:
            raise UserError(f"job {name} is {row.status}, not Running", "port-forward reaches a running job only")
        if row.runtime == PROCESS:
            return ForwardTarget(host="127.0.0.1", port=port)
        published = {p.container_port: p.host_port for p in row.job_spec.ports}
        if port not in published:
            shown = ", ".join(str(p) for p in sorted(published)) or "none"
            raise UserError(f"job {name} does not publish port {port} (its container runs with {row.runtime}; "
                            f"published: {shown})", f"submit it with --port {port} to reach that port")
        host_port = published[port] or published_host_port(row.runtime, container_name(row.id), port)
        if host_port is None:
            raise OperationalError(f"{row.runtime} did not say where job {name}'s port {port} is published")
        return ForwardTarget(host="127.0.0.1", port=host_port)

    # ------------------------------------------------------------------------------ projects

    def list_projects(self) -> list[ProjectInfo]:
        return project_infos(self.store)

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo:
        self._require_admin("create projects")
        check_name("project name", name, "team-a")
        if not 0 <= deserved_gpus <= 10_000 or deserved_gpus != deserved_gpus:
            raise UserError(f"invalid --deserved-gpus {deserved_gpus:g}", "give a number of GPUs from 0 up, e.g. 2")
        with self.store.write() as conn:
            if self.store.project_exists(conn, name):
                raise UserError(f"project {name} already exists", "choose another name, or delete it first")
            self.store.insert_project(conn, name, float(deserved_gpus), time.time())
        wake(self.home)
        return ProjectInfo(name=name, deserved_gpus=float(deserved_gpus))

    def delete_project(self, name: str) -> None:
        self._require_admin("delete projects")
        with self.store.write() as conn:
            if not self.store.project_exists(conn, name):
                raise NotFoundError(f"project {name} was not found", "run `runai list projects` to see them")
            active = [r for r in self.store.live_jobs(name, conn) if not r.job_status.terminal]
            if active:
                names = ", ".join(r.name for r in active[:5]) + (" ..." if len(active) > 5 else "")
                raise UserError(f"project {name} has {len(active)} active job(s): {names}",
                                f"delete them first: runai delete job --all -p {name}")
            self.store.delete_project(conn, name)
        wake(self.home)

    # ------------------------------------------------------------------------------ nodes

    def list_nodes(self) -> list[NodeView]:
        return node_views(self.store)

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        """Give (or take) the dynamic-MIG role to the node's GPUs that can take it: those in MIG mode
        and those whose MIG mode runai-lite may switch (`mig_mode.py`), which it switches. A GPU
        whose MIG mode is off and stays off keeps serving fractions and whole GPUs beside them."""
        self._require_admin("set node roles")
        known = self.store.config("node")
        if node != known:
            raise NotFoundError(f"node {node} was not found", f"the embedded node is {known} (runai list nodes)")
        from .mig_mode import MigModeSwitch  # GPU drivers: only for changing node roles

        switch = MigModeSwitch(self.home.root)
        with self.store.write() as conn:
            gpus = self.store.gpus(node, conn)
            capable = [g for g in gpus if g.mig_capable]
            if not capable:
                raise UserError(f"no GPU on {node} supports MIG", "dynamic MIG needs A100, A30, H100 or H200 GPUs")
            if enabled:
                chosen = self._check_can_enable(conn, node, capable, switch)
                for gpu in chosen:
                    if not gpu.mig_enabled:
                        switch.switch_on(gpu.gpu_index)
                        self.store.set_mig_enabled(conn, node, gpu.gpu_index, True)
            else:
                chosen = [g for g in capable if g.dynamic_mig]
                self._check_can_disable(conn, node, chosen)
                for gpu in chosen:
                    if switch.on_demand(gpu.gpu_index) and gpu.mig_enabled:
                        switch.switch_off(gpu.gpu_index)
                        self.store.set_mig_enabled(conn, node, gpu.gpu_index, False)
                        self.store.forget_partitions(conn, node, gpu.gpu_index)
            for gpu in chosen:
                self.store.set_dynamic_mig(conn, node, gpu.gpu_index, enabled)
        wake(self.home)

    def set_node_type(self, node: str, node_type: str | None) -> None:
        self._require_admin("set node types")
        known = self.store.config("node")
        if node != known:
            raise NotFoundError(f"node {node} was not found", f"the embedded node is {known} (runai list nodes)")
        with self.store.write() as conn:
            row = self.store.node_row(node, conn)
            self.store.set_node_row(conn, dataclasses.replace(row, node_type=node_type))
        wake(self.home)

    def _check_can_enable(self, conn, node: str, capable, switch: "MigModeSwitch") -> list:
        """The GPUs that take the role; refused when none can, or when jobs hold them whole or in
        fractions (a GPU in MIG mode cannot hold those)."""
        chosen = [g for g in capable if g.mig_enabled or switch.on_demand(g.gpu_index)]
        if not chosen:
            indices = ", ".join(str(g.gpu_index) for g in capable)
            hint = (f"declare it with MIG mode on demand: runai-adm local init --simulate {capable[0].model}:1"
                    if capable[0].simulated
                    else f"enable it as root: nvidia-smi -i {capable[0].gpu_index} -mig 1 (then reset the GPU or reboot); "
                    "runai-lite notices within 10 s")
            raise UserError(f"MIG mode is off on GPU {indices} of {node}", hint)
        indices = {g.gpu_index for g in chosen if not g.dynamic_mig}
        users = [r for r in self.store.active_jobs(conn) if r.alloc and r.alloc.kind != "mig"
                 and indices.intersection(r.alloc.gpu_indices)]
        if users:
            raise UserError(f"jobs hold whole GPUs or fractions on {node}: {', '.join(r.key for r in users)}",
                            "wait for them to finish or delete them, then mark the node again")
        return chosen

    def _check_can_disable(self, conn, node: str, dynamic) -> None:
        indices = {g.gpu_index for g in dynamic}
        users = [r for r in self.store.active_jobs(conn) if r.alloc and r.alloc.kind == "mig"
                 and indices.intersection(r.alloc.gpu_indices)]
        if users:
            raise UserError(f"removing dynamic MIG from {node} would strand running MIG jobs: "
                            f"{', '.join(r.key for r in users)}",
                            "wait for them to finish or delete them (runai delete job NAME), then try again")


def _cannot_suspend(row: JobRow) -> tuple[str, str] | None:
    """Why `runai suspend` cannot suspend this job (a message and a hint), or None."""
    if row.job_status.terminal:
        return (f"job {row.name} has {row.status}: only a Pending or Running job can be suspended",
                f"submit it again, or delete it: runai delete job {row.name} -p {row.project}")
    if row.status == JobStatus.SUSPENDED or row.suspend_requested:
        return (f"job {row.name} is already suspended" + (" (its processes are stopping)" if row.suspend_requested
                                                          else ""),
                f"resume it with `runai resume {row.name} -p {row.project}`")
    if row.delete_requested:
        return f"job {row.name} is being deleted", "there is nothing to suspend"
    return None


def _direct_spec(spec: JobSpec, submit_dir: str) -> JobSpec:
    """Checks for a job run without a container: it needs a command, and a working directory that
    exists (by default, the directory it was submitted from)."""
    if not spec.command:
        raise UserError(
            f"nothing to run: no command after -- and no usable docker or podman to run the image {spec.image}",
            f"give the command after --, e.g. runai submit {spec.name} -i {spec.image} -- python train.py, "
            "or install docker or podman")
    if spec.working_dir is None:
        return spec.model_copy(update={"working_dir": submit_dir})
    if not Path(spec.working_dir).is_dir():
        raise UserError(f"--working-dir {spec.working_dir} is not a directory on this machine",
                        "give an existing directory (the job runs directly, without a container)")
    return spec
