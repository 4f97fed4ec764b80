"""How records look on a terminal: pure functions from backend records to text tables and lines.

Columns follow Run:ai's CLI v1 (see the behaviour reference §1.4–1.5), so scripts that read
`runai list` keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..kinds import AllocationKind, JobStatus, JobType
from ..units import format_bytes, format_mib
from .table import TextTable

if TYPE_CHECKING:
    from ..backends.api import Event, GpuView, JobInfo, JobOptions, JobUsage, NodeView, ProjectInfo
    from ..backends.summary import JobSummary
    from ..model import Allocation

JOB_COLUMNS = ("NAME", "STATUS", "AGE", "NODE", "IMAGE", "TYPE", "PROJECT", "USER", "GPUs Allocated (Requested)")
WIDE_COLUMNS = ("ALLOCATION", "ENFORCEMENT", "WHY PENDING")


def age(since: float | None, now: float) -> str:
    """kubectl-style age: 42s, 7m, 3h, 5d."""
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 120 * 60:
        return f"{seconds // 60}m"
    if seconds < 48 * 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def gpus_column(job: JobSummary) -> str:
    """`<allocated> (<requested>)` as Run:ai prints it; `-` when nothing is allocated, and the
    profile when the job holds a MIG partition (a slice count would say less)."""
    if job.allocated_gpus is None:
        allocated = "-"
    elif job.allocated_mig_profile:
        allocated = job.allocated_mig_profile
    else:
        allocated = f"{round(job.allocated_gpus, 3):g}"
    return f"{allocated} ({job.requested})"


def allocation_text(allocation: Allocation | None) -> str:
    return "-" if allocation is None else allocation.describe(node=False)


def enforcement_text(job: JobInfo) -> str:
    from ..enforcement.mechanisms import display_enforcement

    if not job.enforcement:
        return "-"
    if job.memory_limit_mib:
        return f"{display_enforcement(job.enforcement)} ({job.memory_limit_mib} MiB)"
    return display_enforcement(job.enforcement)


def jobs_table(jobs: list[JobSummary], now: float, wide: dict[tuple[str, str], list[str]] | None = None) -> TextTable:
    """`runai list`: a row per job, oldest first within each project; with `wide` (the extra
    cells of each job, by project and name), `-o wide`'s columns too."""
    table = TextTable(JOB_COLUMNS + (WIDE_COLUMNS if wide is not None else ()))
    shown_type = {kind: kind.display for kind in JobType}
    for job in sorted(jobs, key=lambda j: (j.project, j.submitted_at, j.name)):
        row = [job.name, job.status.value, age(job.submitted_at, now), job.node or "-", job.image,
               shown_type[job.type], job.project, job.user or "-", gpus_column(job)]
        if wide is not None:
            row += wide[(job.project, job.name)]
        table.add_row(*row)
    return table


def wide_cells(job: JobInfo) -> list[str]:
    """`-o wide`'s cells of a job: its allocation, enforcement and why it pends."""
    return [allocation_text(job.allocation), enforcement_text(job), job.pending_reason or "-"]


def describe_lines(job: JobInfo, now: float) -> list[tuple[str, str]]:
    """The key/value block of `runai describe job` (Run:ai prints the same kind of block)."""
    from ..enforcement.mechanisms import display_enforcement

    alloc = job.allocation
    lines = [
        ("NAME", job.name),
        ("PROJECT", job.project),
        ("TYPE", job.type.display),
        ("STATUS", job.status.value),
        ("IMAGE", job.image),
        ("USER", job.user or "-"),
        ("COMMAND LINE", " ".join(job.command) or "-"),
        ("WORKING DIR", job.working_dir or "-"),
        ("AGE", age(job.submitted_at, now)),
        ("RUNNING FOR", age(job.started_at, now) if job.status is JobStatus.RUNNING else "-"),
        ("REQUESTED GPUS", job.gpus_requested),
        ("ALLOCATED GPUS", f"{round(job.gpus_allocated, 3):g}" if alloc else "-"),
        ("NODE", job.node or "-"),
        ("ALLOCATION", allocation_text(alloc)),
    ]
    if alloc is not None:
        lines.append(("GPU UUID", ",".join(alloc.gpu_uuids) or "-"))
        if alloc.kind == AllocationKind.MIG:
            lines.append(("MIG DEVICE", alloc.mig_uuid or "-"))
        if alloc.memory_mib:
            lines.append(("ALLOCATED GPU MEMORY", f"{alloc.memory_mib} MiB"))
    lines += [
        ("ENFORCEMENT", display_enforcement(job.enforcement)),
        ("MEMORY LIMIT", f"{job.memory_limit_mib} MiB" if job.memory_limit_mib else "-"),
        ("WHY PENDING", job.pending_reason or "-"),
        ("ATTEMPTS", attempts_text(job)),
    ]
    last = job.last_ended
    if job.status.terminal:
        lines.append(("EXIT CODE", "-" if job.exit_code is None else str(job.exit_code)))
    elif last is not None:  # a requeued or retrying job has no exit code of its own: say whose this was
        lines.append(("LAST ATTEMPT", f"attempt {last.number}: {last.reason}"))
    lines += option_lines(job.options)
    if job.simulated:
        lines.append(("SIMULATED", "yes: the GPU is simulated, no real device backs it"))
    return lines


def attempts_text(job: JobInfo) -> str:
    """`3 (2 failed, 1 preempted; backoff limit 2)`: how many runs, how those that ended ended, and
    the failures its backoff limit allows (only a training job's failures are retried)."""
    ended = job.attempt_counts()
    parts = [f"{count} {outcome.value}" for outcome, count in sorted(ended.items(), key=lambda item: item[0].value)]
    limit = (f"backoff limit {job.backoff_limit}" if job.type is JobType.TRAIN
             else "not retried: interactive jobs are not")
    return f"{job.attempts} ({'; '.join(filter(None, [', '.join(parts), limit]))})"


def option_lines(options: JobOptions) -> list[tuple[str, str]]:
    """describe's lines for what the job asked beyond GPUs; only what it asked for."""
    def cores(milli: int) -> str:
        return f"{milli / 1000:g}"

    lines = []
    if options.cpu_milli or options.cpu_limit_milli:
        lines.append(("CPU", f"request {cores(options.cpu_milli)}" + (
            f", limit {cores(options.cpu_limit_milli)}" if options.cpu_limit_milli else "")))
    if options.memory_mib or options.memory_limit_mib:
        lines.append(("MEMORY", f"request {format_mib(options.memory_mib)}" + (
            f", limit {format_mib(options.memory_limit_mib)}" if options.memory_limit_mib else "")))
    if options.labels:
        lines.append(("LABELS", ",".join(f"{k}={v}" for k, v in options.labels)))
    if options.node_type:
        lines.append(("NODE TYPE", options.node_type))
    if options.volumes:
        lines.append(("VOLUMES", ",".join(f"{v.host_path}:{v.container_path}" + (":ro" if v.read_only else "")
                                          for v in options.volumes)))
    if options.pvcs:
        lines.append(("PVCS", ",".join(_pvc_text(p) for p in options.pvcs)))
    if options.large_shm:
        lines.append(("LARGE SHM", "yes"))
    if options.ports:
        ports = ",".join(f"{p.host_port}:{p.container_port}" if p.host_port else str(p.container_port)
                         for p in options.ports)
        lines.append(("PORTS", ports + (f" (Service {options.service_type.value})" if options.service_type else "")))
    if options.ttl_after_finish_s is not None:
        lines.append(("TTL AFTER FINISH", f"{options.ttl_after_finish_s}s"))
    if options.completions > 1 or options.parallelism > 1:
        lines += [("COMPLETIONS", str(options.completions)), ("PARALLELISM", str(options.parallelism))]
    return lines


def _pvc_text(pvc) -> str:
    mode = ":ro" if pvc.read_only else ""
    if pvc.claim_name:
        return f"{pvc.claim_name}:{pvc.container_path}{mode}"
    return f"{pvc.storage_class or ''}:{format_bytes(pvc.size_bytes or 0)}:{pvc.container_path}{mode} (new claim)"


def events_table(events: Iterable[Event], now: float) -> TextTable:
    table = TextTable(("AGE", "TYPE", "MESSAGE"))
    for event in sorted(events, key=lambda e: e.time):
        table.add_row(age(event.time, now), event.kind, event.message)
    return table


def describe_json(job: JobInfo) -> dict:
    from ..backends.api import attempt_json  # loaded already: the job came from a backend

    return {**job.to_json(), "options": job.options.to_json(),
            "attempt_history": [attempt_json(a) for a in job.attempt_history],
            "events": [e.to_json() for e in sorted(job.events, key=lambda e: e.time)]}


def projects_table(projects: list[ProjectInfo], default: str | None) -> TextTable:
    table = TextTable(("PROJECT", "DESERVED GPUs", "ALLOCATED GPUs", "RUNNING", "PENDING"))
    for project in sorted(projects, key=lambda p: p.name):
        name = f"{project.name} (default)" if project.name == default else project.name
        table.add_row(name, f"{project.deserved_gpus:g}", f"{round(project.allocated_gpus, 3):g}",
                      str(project.running), str(project.pending))
    return table


def gpu_is_free(gpu: GpuView) -> bool:
    """Nothing runs on it (idle MIG partitions do not count: they are reused or destroyed)."""
    return not (gpu.whole_job or gpu.fractions or any(m.state == "used" for m in gpu.mig_instances))


def nodes_table(nodes: list[NodeView]) -> TextTable:
    table = TextTable(("NAME", "GPU TYPE", "GPUs", "FREE GPUs", "MIG", "SIMULATED"))
    for node in sorted(nodes, key=lambda n: n.name):
        models = sorted({g.model for g in node.gpus})
        free = sum(1 for g in node.gpus if gpu_is_free(g))
        mig = [str(g.index) for g in node.gpus if g.dynamic_mig]
        simulated = any(g.simulated for g in node.gpus)
        table.add_row(node.name, ",".join(models) or "-", str(len(node.gpus)), str(free),
                      ("dynamic on GPU " + ",".join(mig)) if mig else "-", "simulated" if simulated else "-")
    return table


TOP_JOB_COLUMNS = ("NAME", "PROJECT", "STATUS", "NODE", "ALLOCATION", "GPU MEMORY LIMIT", "GPU MEMORY USED",
                   "PROCESSES")


def top_jobs_table(rows: list[JobUsage]) -> TextTable:
    """`runai top job`: one row per job, what it holds and, where the driver says, what it uses."""
    table = TextTable(TOP_JOB_COLUMNS)
    for row in sorted(rows, key=lambda r: (r.job.project, r.job.submitted_at, r.job.name)):
        job, alloc = row.job, row.job.allocation
        held = allocation_text(alloc) if alloc else f"- (requests {job.gpus_requested})"
        limit = job.memory_limit_mib or (alloc.memory_mib if alloc else None)
        used = row.used_memory_mib
        if used is not None:
            shown = format_mib(used)
        elif row.measured and row.processes:
            shown = "not reported"  # the driver lists the processes but not their memory (simulated GPUs)
        else:
            shown = "-"
        pids = ",".join(str(p) for p in sorted({p.pid for p in row.processes})) or "-"
        table.add_row(job.name, job.project, job.status.value, job.node or "-", held,
                      format_mib(limit) if limit else "-", shown, pids)
    return table
