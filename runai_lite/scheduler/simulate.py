"""The pure effect of a plan on a snapshot, as if every action succeeded and every victim stopped.

Victims are requeued (status Pending, no allocation): training work is never lost to a
preemption. Their MIG instances stay, idle, unless the plan destroys them. Created instances have
no UUID until an agent reports one; `Reserve` changes nothing a snapshot records.
"""

from __future__ import annotations

from ..gpu.catalog import default_catalog
from ..model import Bind, CreateMig, DestroyMig, Gpu, Job, JobStatus, MigInstance, Plan, Preempt, Snapshot


def apply_plan(snapshot: Snapshot, plan: Plan, *, now: float | None = None) -> Snapshot:
    """`now`, when given, becomes the start time of the jobs bound (the scheduler reads no clock)."""
    jobs = {job.id: job for job in snapshot.jobs}
    instances: dict[tuple[str, int], list[MigInstance]] = {
        (node.name, gpu.index): list(gpu.mig_instances) for node in snapshot.nodes for gpu in node.gpus
    }
    models = {(node.name, gpu.index): gpu.model for node in snapshot.nodes for gpu in node.gpus}

    def set_instance_job(key: tuple[str, int], start: int | None, job_id: str | None, only_if: str | None) -> None:
        layout = instances.get(key, [])
        for i, inst in enumerate(layout):
            if inst.start == start and (only_if is None or inst.job == only_if):
                layout[i] = inst.model_copy(update={"job": job_id})

    for action in plan.actions:
        if isinstance(action, Preempt):
            victim = jobs[action.job]
            alloc = victim.allocation
            if alloc is not None and alloc.kind == "mig" and alloc.gpu_indices:
                set_instance_job((alloc.node, alloc.gpu_indices[0]), alloc.mig_start, None, victim.id)
            jobs[victim.id] = _requeued(victim)
        elif isinstance(action, DestroyMig):
            key = (action.node, action.gpu_index)
            instances[key] = [i for i in instances.get(key, []) if i.start != action.start]
        elif isinstance(action, CreateMig):
            key = (action.node, action.gpu_index)
            model = default_catalog().find(models.get(key, ""))
            size = model.profile(action.profile).memory_slices if model else 1
            instances.setdefault(key, []).append(MigInstance(profile=action.profile, start=action.start, size=size))
        elif isinstance(action, Bind):
            alloc = action.allocation
            job = jobs[action.job]
            update: dict = {"status": JobStatus.RUNNING, "allocation": alloc}
            if now is not None:
                update["started_at"] = now
            jobs[job.id] = job.model_copy(update=update)
            if alloc.kind == "mig" and alloc.gpu_indices:
                set_instance_job((alloc.node, alloc.gpu_indices[0]), alloc.mig_start, job.id, None)

    nodes = tuple(
        node.model_copy(update={"gpus": tuple(_with_instances(gpu, instances[(node.name, gpu.index)])
                                              for gpu in node.gpus)})
        for node in snapshot.nodes
    )
    return snapshot.model_copy(update={"nodes": nodes, "jobs": tuple(jobs[j.id] for j in snapshot.jobs)})


def _requeued(job: Job) -> Job:
    return job.model_copy(update={"status": JobStatus.PENDING, "allocation": None, "started_at": None})


def _with_instances(gpu: Gpu, layout: list[MigInstance]) -> Gpu:
    return gpu.model_copy(update={"mig_instances": tuple(sorted(layout, key=lambda i: i.start))})
