"""`LocalBackend`: the `Backend` the CLI uses on the embedded default, in one of two modes.

- System mode (the machine-wide daemon is installed and `$RUNAI_LITE_HOME` is not set): every
  call is one request on the socket (`client.py`), served by the daemon for the caller the kernel
  names. The user needs no home and no daemon of their own.
- Personal mode: the calls go to a `LocalService` in this process, on the user's own home, after
  making sure a daemon serves it (restarting one that died). `runai submit` is handed to the running
  daemon over the home's own socket instead, as plain JSON (`submit_flags`), so that the command
  loads neither the models nor the store.

Either way a command never waits for scheduling, except `delete`, which waits (up to the grace
period and a margin) for the job's processes to stop, and says so when they have not.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING, Any

from ...errors import OperationalError, UserError
from ...files import current_umask
from ...kinds import text_problem
from ..summary import JobSummary
from .paths import Home, lock_held, system_socket

if TYPE_CHECKING:
    import socket

    from ...model import JobSpec
    from ...submission.flags import SubmitFlags, SubmitReceipt
    from ..api import Event, JobInfo, JobUsage, NodeView, ProjectInfo
    from .store import Store


CONNECT_TIMEOUT_SECONDS = 10.0


class LocalBackend:
    name = "local"

    def __init__(self, home: Path | str | None = None):
        self._socket = system_socket() if home is None else None
        self.system = self._socket is not None
        self.home: Home | None = None if self.system else Home.at(home)
        self._store: Store | None = None
        self._client: Any = None

    @property
    def store(self) -> Store | None:
        """This process's own store (personal mode; opened with the service), None in system mode."""
        if self.home is not None:
            self._service  # noqa: B018 - opens it
        return self._store

    @property
    def _service(self) -> Any:
        """The service every call but `job_summaries` goes to, made on first use: the machine-wide
        daemon's socket client, or a `LocalService` on this process's own store (either loads the
        pydantic models, which `runai list` does without)."""
        if self._client is None:
            if self._socket is not None:
                from .client import ServiceClient

                self._client = ServiceClient(self._socket)
            else:
                from .identity import this_process
                from .service import LocalService
                from .store import Store

                self._store = Store(self.home.db)
                self._client = LocalService(self.home, self._store, this_process, personal=True)
        return self._client

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    def _daemon(self) -> None:
        if self.home is not None and not lock_held(self.home.daemon_lock):  # control.daemon_running
            from .control import ensure_daemon  # starting one: subprocess, signals, the store

            ensure_daemon(self.home)

    # ------------------------------------------------------------------------------ Backend

    def current_user(self) -> str:
        """The account of the effective uid: $USER and $LOGNAME are not asked, since anyone can set
        them (`USER=alice runai logs ...` must not read alice's logs)."""
        from .identity import this_process

        return this_process().user

    def submit(self, spec: JobSpec) -> JobInfo:
        self._daemon()
        from .service import SubmitContext

        return self._service.submit(spec, SubmitContext(**_submit_context(spec.working_dir)))

    def submit_flags(self, flags: SubmitFlags) -> SubmitReceipt:
        """Handed to the daemon as plain JSON where one listens (the machine-wide one, or this
        home's running daemon), which checks the flags and stores the job; otherwise checked and
        stored in this process, as `submit` does, starting the daemon."""
        from ...submission.flags import SubmitReceipt
        from . import protocol  # the socket module: only the commands that talk to a daemon load it

        context = _submit_context(flags.working_dir)
        conn = self._daemon_connection()
        if conn is not None:
            try:
                answer = protocol.call(conn, "submit_flags", flags=flags.to_json(), context=context)
            except protocol.ProtocolError as error:  # sent, and no answer: stored or not, we cannot say
                raise OperationalError(f"{error.message} while submitting",
                                       f"see whether the job was stored with `runai list -p {flags.project}`, and "
                                       "submit it again if not") from None
            return SubmitReceipt.from_json(answer)
        from ..submission import submit_in_process

        return submit_in_process(self, flags)

    def _daemon_connection(self) -> socket.socket | None:
        """A connection to the daemon's socket, or None where this home's daemon does not listen on
        one (not running yet, an older daemon, a home whose path is too long for a socket's name)."""
        if self._socket is not None:
            from .client import connect_to_system_daemon

            return connect_to_system_daemon(self._socket)
        if not lock_held(self.home.daemon_lock):
            return None
        from . import protocol

        try:
            return protocol.connect(self.home.api_socket)
        except OSError:
            return None

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        self._daemon()
        return self._service.list_jobs(project)

    def job_summaries(self, project: str | None) -> list[JobSummary]:
        self._daemon()
        if self._socket is not None:
            from . import protocol
            from .client import connect_to_system_daemon

            rows = protocol.call(connect_to_system_daemon(self._socket), "job_summaries", project=project)
            return [JobSummary.from_json(row) for row in rows]
        from .job_summaries import job_summaries

        return job_summaries(self.home.db, project)

    def get_job(self, project: str, name: str) -> JobInfo:
        self._daemon()
        return self._service.get_job(project, name)

    def delete_jobs(self, project: str, names: list[str] | None) -> list[str]:
        self._daemon()
        outcome = self._service.delete_jobs(project, names)
        if outcome.stopping:
            deleted = f" (deleted: {', '.join(outcome.deleted)})" if outcome.deleted else ""
            raise OperationalError(
                f"job(s) {', '.join(outcome.stopping)} in project {project} are still stopping: their processes "
                f"had not exited when the wait ended{deleted}",
                "the daemon deletes them once they exit; check with `runai list jobs`, and see "
                "`runai-adm local status` if it stays so")
        return outcome.deleted

    def suspend_job(self, project: str, name: str) -> JobInfo:
        self._daemon()
        outcome = self._service.suspend_job(project, name)
        if outcome.stopping:
            raise OperationalError(
                f"job {name} in project {project} is still stopping: its processes had not exited when the wait "
                "ended", "the daemon suspends it once they exit; check with `runai list jobs`")
        return outcome.job

    def resume_job(self, project: str, name: str) -> JobInfo:
        self._daemon()
        return self._service.resume_job(project, name)

    def port_opener(self, project: str, name: str, port: int) -> Callable[[], socket.socket]:
        self._daemon()
        import socket

        target = self._service.forward_target(project, name, port)
        return lambda: socket.create_connection((target.host, target.port), timeout=CONNECT_TIMEOUT_SECONDS)

    def top_jobs(self, project: str | None) -> list[JobUsage]:
        self._daemon()
        return self._service.top_jobs(project)

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None,
             attempt: int | None = None) -> Iterator[str]:
        self._daemon()
        return self._service.logs(project, name, follow, tail, attempt)

    def exec(self, project: str, name: str, argv: list[str], tty: bool = False, stdin: bool = False) -> int:
        self._daemon()
        from .runner import PROCESS

        target = self._service.exec_target(project, name)
        if not argv:
            raise UserError("no command given", f"e.g. runai exec {name} -- nvidia-smi -L")
        if target.runtime != PROCESS:
            from .container_exec import exec_in_container

            flags = [*(["-i"] if stdin else []), *(["-t"] if tty else [])]
            command = [*target.runtime_command, "exec", *flags, target.container, *argv]
            return exec_in_container(command, argv[0], stdin=stdin, tty=tty)
        from ..terminal import run_attached

        try:
            return run_attached(argv, env={**os.environ, **target.env}, cwd=target.cwd, stdin=stdin, tty=tty)
        except FileNotFoundError:
            raise UserError(f"{argv[0]}: command not found", "give a program on PATH or a path to it") from None
        except OSError as error:
            raise OperationalError(f"cannot run {argv[0]}: {error.strerror}") from None

    def events(self, project: str, name: str) -> tuple[Event, ...]:
        return self._service.events(project, name)

    # ------------------------------------------------------------------------------ projects

    def list_projects(self) -> list[ProjectInfo]:
        return self._service.list_projects()

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo:
        return self._service.create_project(name, deserved_gpus)

    def delete_project(self, name: str) -> None:
        self._service.delete_project(name)

    # ------------------------------------------------------------------------------ nodes

    def list_nodes(self) -> list[NodeView]:
        self._daemon()
        return self._service.list_nodes()

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        self._daemon()
        self._service.set_dynamic_mig(node, enabled)

    def set_node_type(self, node: str, node_type: str | None) -> None:
        self._daemon()
        self._service.set_node_type(node, node_type)


def _submit_context(working_dir: str | None) -> dict[str, Any]:
    """This process's directory, umask and environment (`service.SubmitContext`'s fields): what the
    job runs with. A variable whose bytes are not text cannot be stored, and is left out (as it
    could not be passed on anyway)."""
    try:
        cwd = os.getcwd()
    except FileNotFoundError:
        if working_dir is None:
            raise UserError("the current directory no longer exists",
                            "cd to an existing directory, or give --working-dir") from None
        cwd = "/"
    if text_problem(cwd):
        if working_dir is None:
            raise UserError(f"the current directory {cwd!r} cannot be stored (its name is not UTF-8 text)",
                            "give --working-dir, or submit from another directory")
        cwd = "/"
    env = {key: value for key, value in os.environ.items() if not text_problem(f"{key}={value}")}
    return {"cwd": cwd, "umask": current_umask(), "env": env}
