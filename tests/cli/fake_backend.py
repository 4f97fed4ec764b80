"""An in-memory `Backend` for CLI tests: it records what the CLI asked for and answers with records
the tests set up, so rendering, JSON shapes and error handling are tested without a daemon."""

from __future__ import annotations

from collections.abc import Iterator

from runai_lite.backends.api import JobInfo, NodeView, ProjectInfo
from runai_lite.backends.submission import submit_in_process
from runai_lite.backends.summary import JobSummary
from runai_lite.errors import NotFoundError, UserError
from runai_lite.model import JobSpec, JobStatus
from runai_lite.submission.flags import SubmitFlags, SubmitReceipt


class FakeBackend:
    name = "fake"

    def __init__(self, projects: list[ProjectInfo] | None = None, jobs: list[JobInfo] | None = None,
                 nodes: list[NodeView] | None = None, logs: dict[str, list[str]] | None = None):
        self.projects = {p.name: p for p in (projects if projects is not None else [ProjectInfo(name="team-a", deserved_gpus=2)])}
        self.jobs = {(j.project, j.name): j for j in jobs or []}
        self.nodes = nodes or []
        self.log_lines = logs or {}
        self.submitted: list[JobSpec] = []
        self.exec_calls: list[tuple[str, str, list[str], bool, bool]] = []
        self.log_calls: list[tuple[str, str, bool, int | None]] = []
        self.deleted: list[tuple[str, str]] = []
        self.dynamic_mig: dict[str, bool] = {}
        self.now = 1000.0

    def current_user(self) -> str:
        return "alice"

    def submit_flags(self, flags: SubmitFlags) -> SubmitReceipt:
        return submit_in_process(self, flags)

    def submit(self, spec: JobSpec) -> JobInfo:
        if spec.project not in self.projects:
            raise NotFoundError(f"project {spec.project} was not found")
        if (spec.project, spec.name) in self.jobs:
            raise UserError(f"job {spec.name} already exists in project {spec.project}")
        self.submitted.append(spec)
        job = JobInfo(name=spec.name, project=spec.project, type=spec.type, status=JobStatus.PENDING,
                      image=spec.image, user=spec.user, command=spec.command, working_dir=spec.working_dir,
                      submitted_at=self.now, request=spec.request, backoff_limit=spec.backoff_limit)
        self.jobs[(spec.project, spec.name)] = job
        return job

    def list_jobs(self, project: str | None) -> list[JobInfo]:
        return [j for (p, _), j in self.jobs.items() if project is None or p == project]

    def job_summaries(self, project: str | None) -> list[JobSummary]:
        return [job.summary() for job in self.list_jobs(project)]

    def get_job(self, project: str, name: str) -> JobInfo:
        try:
            return self.jobs[(project, name)]
        except KeyError:
            raise NotFoundError(f"job {name} was not found in project {project}", "run `runai list`") from None

    def delete_jobs(self, project: str, names: list[str] | None) -> list[str]:
        targets = names if names is not None else [n for (p, n) in self.jobs if p == project]
        for name in targets:
            self.get_job(project, name)
        for name in targets:
            del self.jobs[(project, name)]
            self.deleted.append((project, name))
        return targets

    def suspend_job(self, project: str, name: str) -> JobInfo:
        job = self.get_job(project, name)
        self.jobs[(project, name)] = job = job.model_copy(update={"status": JobStatus.SUSPENDED, "allocation": None})
        return job

    def resume_job(self, project: str, name: str) -> JobInfo:
        job = self.get_job(project, name)
        self.jobs[(project, name)] = job = job.model_copy(update={"status": JobStatus.PENDING})
        return job

    def logs(self, project: str, name: str, follow: bool = False, tail: int | None = None,
             attempt: int | None = None) -> Iterator[str]:
        self.get_job(project, name)
        self.log_calls.append((project, name, follow, tail))
        lines = self.log_lines.get(name, [])
        return iter(lines[-tail:] if tail else lines)

    def exec(self, project: str, name: str, argv: list[str], tty: bool = False, stdin: bool = False) -> int:
        self.get_job(project, name)
        self.exec_calls.append((project, name, argv, tty, stdin))
        return 3

    def list_projects(self) -> list[ProjectInfo]:
        return list(self.projects.values())

    def create_project(self, name: str, deserved_gpus: float) -> ProjectInfo:
        if name in self.projects:
            raise UserError(f"project {name} already exists")
        self.projects[name] = ProjectInfo(name=name, deserved_gpus=deserved_gpus)
        return self.projects[name]

    def delete_project(self, name: str) -> None:
        if name not in self.projects:
            raise NotFoundError(f"project {name} was not found")
        del self.projects[name]

    def list_nodes(self) -> list[NodeView]:
        return self.nodes

    def set_dynamic_mig(self, node: str, enabled: bool) -> None:
        if node not in {n.name for n in self.nodes}:
            raise NotFoundError(f"node {node} was not found")
        self.dynamic_mig[node] = enabled
