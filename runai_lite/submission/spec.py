"""`spec_from_flags`: the checks `runai submit`'s flags need together, and the `JobSpec` they make.

The one place a submission is read, whichever process does it (the CLI for a Kubernetes cluster,
the embedded daemon for the flags the CLI sends it). Every refusal is a `UserError` (exit 2) that
names what would be right; nothing is stored before the spec is whole."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import ValidationError

from ..errors import UserError
from ..gpu.requests import request_from_flags
from ..kinds import check_name
from ..model import JobSpec, JobType
from . import values as v
from .flags import SubmitFlags, SubmitReceipt


def spec_from_flags(flags: SubmitFlags, user: str, taken_names: Callable[[], Iterable[str]]) -> JobSpec:
    """The job `flags` ask for, submitted by `user`; `taken_names` gives the project's job names
    (asked only when a name must be generated from a prefix)."""
    f = flags
    if f.replace_entrypoint and not f.command:
        raise UserError("--command needs the command after --", "e.g. runai submit job1 -i IMAGE --command -- python train.py")
    if f.interactive and f.backoff_limit is not None:
        raise UserError("--backoff-limit applies to training jobs only", "drop --backoff-limit or --interactive")
    request = request_from_flags(gpu=f.gpu, gpu_memory=f.gpu_memory, mig_profile=f.mig_profile)
    env = v.parse_env(f.environment)
    if f.interactive and (f.completions or f.parallelism):
        raise UserError("--completions and --parallelism apply to training jobs only",
                        "drop them or --interactive (Run:ai's rule)")
    if f.parallelism is not None and f.parallelism > 1 and f.completions is None:
        raise UserError("--parallelism above 1 needs --completions (Run:ai's rule)",
                        f"e.g. --completions {f.parallelism * 2} --parallelism {f.parallelism}")
    if f.service_type is not None and not f.ports:
        raise UserError("--service-type needs at least one --port", "e.g. --port 8888 --service-type nodeport")
    host = _host_resources(f)
    if not f.image.strip():
        raise UserError("-i, --image must be set", "e.g. runai submit job1 -i gcr.io/run-ai-demo/quickstart-cuda")
    name = _job_name(f, taken_names)
    # Interactive jobs are never retried (Run:ai forces backoffLimit 0); training jobs keep JobSpec's default.
    retries = {"backoff_limit": 0} if f.interactive else ({} if f.backoff_limit is None else
                                                          {"backoff_limit": f.backoff_limit})
    try:
        return JobSpec(name=name, project=f.project, image=f.image, type=job_type(f.interactive, f.preemptible),
                       request=request, command=f.command, replace_entrypoint=f.replace_entrypoint, env=env,
                       working_dir=f.working_dir, user=user, **retries, **host)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise UserError(f"invalid job: {message}", "see `runai submit --help`") from None


def submit_from_flags(flags: SubmitFlags, user: str, taken_names: Callable[[], Iterable[str]],
                      submit: Callable[[JobSpec], Any]) -> SubmitReceipt:
    """The spec `flags` ask for (`spec_from_flags`) handed to `submit`, and the receipt of the job
    it answers with (anything with a name, a project and events)."""
    job = submit(spec_from_flags(flags, user, taken_names))
    return SubmitReceipt.of(job.name, job.project, job.events)


def job_type(interactive: bool, preemptible: bool) -> JobType:
    if interactive:
        return JobType.INTERACTIVE_PREEMPTIBLE if preemptible else JobType.INTERACTIVE
    return JobType.TRAIN


def _host_resources(f: SubmitFlags) -> dict:
    cpu_limit_milli = v.parse_cpu("--cpu-limit", f.cpu_limit) if f.cpu_limit is not None else 0
    memory_limit_mib = v.parse_memory("--memory-limit", f.memory_limit) if f.memory_limit is not None else 0
    host = {
        # As in Kubernetes, a limit without a request reserves the limit.
        "cpu_milli": v.parse_cpu("--cpu", f.cpu) if f.cpu is not None else cpu_limit_milli,
        "memory_mib": v.parse_memory("--memory", f.memory) if f.memory is not None else memory_limit_mib,
        "cpu_limit_milli": cpu_limit_milli, "memory_limit_mib": memory_limit_mib,
        "volumes": tuple(v.parse_volume(text) for text in f.volumes),
        "pvcs": tuple(v.parse_pvc(text) for text in f.pvcs),
        "ports": tuple(v.parse_port(text) for text in f.ports),
        "service_type": v.parse_service_type(f.service_type) if f.service_type is not None else None,
        "labels": tuple(v.parse_label(text) for text in f.labels),
        "node_type": f.node_type,
        "ttl_after_finish_s": v.parse_duration("--ttl-after-finish", f.ttl_after_finish) if f.ttl_after_finish else None,
        "large_shm": f.large_shm, "completions": f.completions or 1, "parallelism": f.parallelism or 1,
    }
    if host["cpu_limit_milli"] and host["cpu_milli"] > host["cpu_limit_milli"]:
        raise UserError(f"--cpu {f.cpu} is above --cpu-limit {f.cpu_limit}", "a request can be at most its limit")
    if host["memory_limit_mib"] and host["memory_mib"] > host["memory_limit_mib"]:
        raise UserError(f"--memory {f.memory} is above --memory-limit {f.memory_limit}",
                        "a request can be at most its limit")
    return host


def _job_name(f: SubmitFlags, taken_names: Callable[[], Iterable[str]]) -> str:
    if f.name is None:
        prefix = f.name_prefix or "job"
        check_name("name prefix", prefix, "exp")
        name = v.next_name(prefix, set(taken_names()))
    elif f.name_prefix:
        raise UserError("give a job name or --name-prefix, not both", f"e.g. runai submit {f.name} -i {f.image}")
    else:
        name = f.name
    check_name("job name", name, "mig1")
    return name
