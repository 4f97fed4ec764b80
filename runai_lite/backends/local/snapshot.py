"""The scheduler's view of the embedded node, built from the store (pure: rows in, `Snapshot` out).

The snapshot shows the state the last recorded plan leads to, not the moment's processes: a job
that is stopping (preempted, or being deleted) is left out, since its resources are already
promised to whatever the plan put there, and a partition the plan destroys is gone while one it
creates is there. The daemon starts jobs only once what they were promised is really free.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ...model import Gpu, Job, JobStatus, MigInstance, Node, Project, Snapshot
from .store import GpuRow, JobRow, PartitionRow, PartitionState, ProjectRow


@dataclass(frozen=True)
class NodeHost:
    """The embedded node beyond its GPUs: CPU and memory to hand out (None: not scheduled) and its
    node type (Run:ai's `run.ai/type`; None: none)."""

    cpu_milli: int | None = None
    memory_mib: int | None = None
    node_type: str | None = None


def backing_off(row: JobRow, now: float | None) -> bool:
    """A failed job waiting for its retry's time (never a bound or running one)."""
    return (now is not None and row.retry_at is not None and row.retry_at > now and row.status == JobStatus.PENDING
            and row.allocation is None)


def scheduled_jobs(rows: Iterable[JobRow], host: NodeHost = NodeHost(), now: float | None = None) -> list[Job]:
    """Pending jobs to place, and jobs that hold what they were given (bound or running). A job
    asking for a node type the node does not have may run on no node; a job backing off from a
    failure is not placed before its retry is due (at `now` or later; None: every job is)."""
    jobs = []
    for row in rows:
        if row.stopping or backing_off(row, now):
            continue
        holds = row.status == JobStatus.RUNNING or row.bound
        spec = row.job_spec
        wrong_type = spec.node_type is not None and spec.node_type != host.node_type
        jobs.append(Job(
            id=row.id, name=row.name, project=row.project, type=row.job_type, request=spec.request,
            status=JobStatus.RUNNING if holds else JobStatus.PENDING, submitted_at=row.submitted_at,
            started_at=row.started_at, allocation=row.alloc if holds else None, cpu_milli=spec.cpu_milli,
            memory_mib=spec.memory_mib, eligible_nodes=() if wrong_type and not holds else None,
        ))
    return jobs


def node_type_reason(node: str, host: NodeHost, wanted: str) -> str:
    """Why a job asking for node type `wanted` waits here, and how an administrator would change it."""
    has = f"has type {host.node_type}" if host.node_type else "has no type"
    return (f"no node has node type {wanted} (run.ai/type): node {node} {has}; an administrator gives it one "
            f"with `runai-adm set node-type {node} {wanted}`")


def mig_holders(jobs: Iterable[Job]) -> dict[tuple[int, int], str]:
    """(GPU index, start slice) → the id of the job whose allocation is that partition."""
    holders = {}
    for job in jobs:
        alloc = job.allocation
        if alloc is not None and alloc.kind == "mig" and alloc.mig_start is not None and alloc.gpu_indices:
            holders[(alloc.gpu_indices[0], alloc.mig_start)] = job.id
    return holders


def build_snapshot(node: str, gpus: Sequence[GpuRow], layout: Sequence[PartitionRow],
                   rows: Sequence[JobRow], projects: Sequence[ProjectRow], policy: str = "default",
                   host: NodeHost = NodeHost(), now: float | None = None) -> Snapshot:
    jobs = scheduled_jobs(rows, host, now)
    holders = mig_holders(jobs)
    instances: dict[int, list[MigInstance]] = {}
    for part in layout:
        if part.state == PartitionState.DESTROYING:
            continue
        instances.setdefault(part.gpu_index, []).append(MigInstance(
            profile=part.profile, start=part.start, size=part.size, uuid=part.uuid,
            job=holders.get((part.gpu_index, part.start))))
    node_gpus = tuple(
        Gpu(index=g.gpu_index, uuid=g.uuid, model=g.model, memory_mib=g.memory_mib, dynamic_mig=g.dynamic_mig,
            mig_enabled=g.mig_enabled, simulated=g.simulated, mig_instances=tuple(instances.get(g.gpu_index, ())))
        for g in gpus
    )
    return Snapshot(
        nodes=(Node(name=node, gpus=node_gpus, cpu_milli=host.cpu_milli, memory_mib=host.memory_mib),),
        jobs=tuple(jobs),
        projects=tuple(Project(name=p.name, deserved_gpus=p.deserved_gpus) for p in projects),
        policy=policy,
    )
