"""Checks that hold for every valid snapshot and plan, independent of any backend.

Each check returns a list of problems in words (empty = fine), so a daemon can log them after every
cycle and a test can assert on them.
"""

from __future__ import annotations

from fractions import Fraction

from ..gpu.catalog import GpuModel, default_catalog
from ..gpu.mig_layout import Placed, can_place
from ..model import (
    MILLI,
    Allocation,
    AllocationKind,
    Bind,
    CreateMig,
    DestroyMig,
    Gpu,
    Job,
    JobStatus,
    Plan,
    Preempt,
    Snapshot,
)
from .simulate import apply_plan
from .state import ClusterState


def check_snapshot(snapshot: Snapshot) -> list[str]:
    problems: list[str] = []
    gpus: dict[tuple[str, int], Gpu] = {}
    for node in snapshot.nodes:
        for gpu in node.gpus:
            gpus[(node.name, gpu.index)] = gpu
            problems += _check_layout(node.name, gpu)
    ids = [job.id for job in snapshot.jobs]
    for job_id in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"job {job_id} appears more than once")
    used_share: dict[tuple[str, int], int] = {}
    whole: dict[tuple[str, int], list[str]] = {}
    instance_users: dict[tuple[str, int, int], list[str]] = {}
    for job in snapshot.jobs:
        alloc = job.allocation
        if not job.status.holds_resources:
            continue
        if alloc is None:
            problems.append(f"job {job.id} is {job.status} but has no allocation")
            continue
        for index in alloc.gpu_indices:
            key = (alloc.node, index)
            gpu = gpus.get(key)
            if gpu is None:
                problems.append(f"job {job.id} is allocated {alloc.node} GPU {index}, which does not exist")
                continue
            if alloc.kind == AllocationKind.MIG:
                problems += _check_mig_allocation(job, alloc, gpu)
                instance_users.setdefault((*key, alloc.mig_start or 0), []).append(job.id)
            else:
                if gpu.dynamic_mig or gpu.mig_enabled:
                    problems.append(f"job {job.id} holds a {alloc.kind} of MIG-enabled {alloc.node} GPU {index}")
                used_share[key] = used_share.get(key, 0) + (alloc.share_milli if alloc.kind == AllocationKind.FRACTION else MILLI)
                if alloc.kind == AllocationKind.GPU:
                    whole.setdefault(key, []).append(job.id)
        if len(set(alloc.gpu_indices)) != len(alloc.gpu_indices):
            problems.append(f"job {job.id} is allocated the same GPU twice")
    for (node, index), share in sorted(used_share.items()):
        if share > MILLI:
            problems.append(f"shares on {node} GPU {index} sum to {share / MILLI:g} (more than 1)")
    for (node, index), holders in sorted(whole.items()):
        if used_share[(node, index)] > MILLI or len(holders) > 1:
            problems.append(f"{node} GPU {index} is allocated whole to {', '.join(holders)} but shared")
    for (node, index, start), users in sorted(instance_users.items()):
        if len(users) > 1:
            problems.append(f"MIG instance at slice {start} of {node} GPU {index} is used by {', '.join(users)}")
    return problems + _check_host(snapshot)


def _check_host(snapshot: Snapshot) -> list[str]:
    """The CPU and memory requests of the jobs holding a node's resources fit its capacity."""
    cpu: dict[str, int] = {}
    memory: dict[str, int] = {}
    for job in snapshot.jobs:
        if job.status.holds_resources and job.allocation is not None:
            node = job.allocation.node
            cpu[node] = cpu.get(node, 0) + job.cpu_milli
            memory[node] = memory.get(node, 0) + job.memory_mib
    problems = []
    for node in snapshot.nodes:
        if node.cpu_milli is not None and cpu.get(node.name, 0) > node.cpu_milli:
            problems.append(f"CPU requests on {node.name} sum to {cpu[node.name]}m (more than {node.cpu_milli}m)")
        if node.memory_mib is not None and memory.get(node.name, 0) > node.memory_mib:
            problems.append(f"memory requests on {node.name} sum to {memory[node.name]}Mi "
                            f"(more than {node.memory_mib}Mi)")
    return problems


def _model(gpu: Gpu) -> GpuModel | None:
    return default_catalog().find(gpu.model)


def _check_layout(node: str, gpu: Gpu) -> list[str]:
    problems = []
    model = _model(gpu)
    if gpu.mig_instances and (model is None or not model.mig_capable):
        return [f"{node} GPU {gpu.index} ({gpu.model}) has MIG instances but the model has no MIG profiles"]
    if model is None:
        return []
    placed: list[Placed] = []
    for inst in sorted(gpu.mig_instances, key=lambda i: i.start):
        names = {p.name for p in model.profiles}
        if inst.profile not in names:
            problems.append(f"{node} GPU {gpu.index}: unknown MIG profile {inst.profile} for {model.name}")
            continue
        profile = model.profile(inst.profile)
        if inst.size != profile.memory_slices:
            problems.append(f"{node} GPU {gpu.index}: {inst.profile} at slice {inst.start} has size {inst.size}, "
                            f"expected {profile.memory_slices}")
        if not can_place(model, placed, profile, inst.start):
            problems.append(f"{node} GPU {gpu.index}: {inst.profile} at slice {inst.start} overlaps another "
                            "instance, is not an allowed placement, or exceeds the GPU's compute or instance cap")
        placed.append(Placed(inst.start, inst.profile))
    return problems


def _check_mig_allocation(job: Job, alloc: Allocation, gpu: Gpu) -> list[str]:
    where = f"{alloc.node} GPU {gpu.index}"
    if not gpu.dynamic_mig and not gpu.mig_enabled:
        return [f"job {job.id} holds a MIG instance on {where}, which is not MIG-enabled"]
    inst = next((i for i in gpu.mig_instances if i.start == alloc.mig_start), None)
    if inst is None:
        return [f"job {job.id} holds a MIG instance at slice {alloc.mig_start} of {where}, which does not exist"]
    problems = []
    if inst.profile != alloc.mig_profile:
        problems.append(f"job {job.id} holds a {alloc.mig_profile} but the instance at slice {inst.start} of "
                        f"{where} is a {inst.profile}")
    if inst.job is not None and inst.job != job.id:
        problems.append(f"the MIG instance at slice {inst.start} of {where} names job {inst.job}, not {job.id}")
    return problems


def check_plan(snapshot: Snapshot, plan: Plan) -> list[str]:
    """The plan's own rules, and that applying it leaves a valid snapshot."""
    problems: list[str] = []
    jobs = {job.id: job for job in snapshot.jobs}
    state = ClusterState(snapshot)
    order = {"preempt": 0, "destroy-mig": 1, "create-mig": 2, "reserve": 3, "bind": 4}
    ranks = [order[a.action] for a in plan.actions]
    if ranks != sorted(ranks):
        problems.append("actions are not in the order Preempt, DestroyMig, CreateMig, Reserve, Bind")
    binds = plan.of_type(Bind)
    bound = [b.job for b in binds]
    for job_id in sorted({j for j in bound if bound.count(j) > 1}):
        problems.append(f"job {job_id} is bound twice")
    for bind in binds:
        job = jobs.get(bind.job)
        if job is None:
            problems.append(f"bind of unknown job {bind.job}")
        elif job.status is not JobStatus.PENDING:
            problems.append(f"job {job.id} is bound but is {job.status}, not Pending")
    pending_ids = [p[0] for p in plan.pending]
    for job in snapshot.jobs:
        if job.status is JobStatus.PENDING and job.id not in bound and job.id not in pending_ids:
            problems.append(f"pending job {job.id} is neither bound nor given a reason")
    for job_id, reason in plan.pending:
        if not reason.strip():
            problems.append(f"pending job {job_id} has an empty reason")
    problems += _check_victims(jobs, state, plan, binds)
    problems += _check_mig_actions(snapshot, plan, jobs)
    problems += _check_quota(jobs, state, binds)
    problems += [f"after the plan: {p}" for p in check_snapshot(apply_plan(snapshot, plan))]
    return problems


def _check_victims(jobs: dict[str, Job], state: ClusterState, plan: Plan, binds: list[Bind]) -> list[str]:
    problems = []
    # Project usage once this plan's jobs are bound, before its victims stop: what reclaim judges.
    usage = dict(state.usage)
    for bind in binds:
        if bind.job in jobs:
            project = jobs[bind.job].project
            usage[project] = usage.get(project, Fraction(0)) + state.charge_of(bind.allocation)
    reclaimed: dict[str, Fraction] = {}
    for preempt in plan.of_type(Preempt):
        victim = jobs.get(preempt.job)
        if victim is None:
            problems.append(f"preempt of unknown job {preempt.job}")
            continue
        if victim.status is not JobStatus.RUNNING:
            problems.append(f"job {victim.id} is preempted but is {victim.status}, not Running")
        if not victim.type.preemptible:
            problems.append(f"interactive job {victim.id} is preempted; interactive jobs are never preempted")
        alloc = victim.allocation
        gpus = set() if alloc is None else {(alloc.node, i) for i in alloc.gpu_indices}
        beneficiaries = [jobs[b.job] for b in binds if b.job in jobs
                         and gpus & {(b.allocation.node, i) for i in b.allocation.gpu_indices}]
        if not beneficiaries:
            problems.append(f"job {victim.id} is preempted but no job is bound to its GPUs")
            continue
        if any(b.project == victim.project and victim.priority < b.priority for b in beneficiaries):
            continue
        reclaimers = [b for b in beneficiaries if b.project != victim.project
                      and state.usage_of(b.project) < state.deserved_of(b.project)]
        over = usage.get(victim.project, Fraction(0)) > state.deserved_of(victim.project)
        if not (reclaimers and over):
            problems.append(f"job {victim.id} (priority {victim.priority}, project {victim.project}) is preempted "
                            "for jobs of equal or lower priority that may not reclaim from its project: "
                            + ", ".join(f"{b.id} ({b.priority}, {b.project})" for b in beneficiaries))
        elif alloc is not None:
            reclaimed[victim.project] = reclaimed.get(victim.project, Fraction(0)) + state.charge_of(alloc)
    for project, taken in sorted(reclaimed.items()):
        if usage.get(project, Fraction(0)) - taken < state.deserved_of(project):
            problems.append(f"reclaim takes project {project} below its deserved quota")
    return problems


def _check_mig_actions(snapshot: Snapshot, plan: Plan, jobs: dict[str, Job]) -> list[str]:
    problems = []
    preempted = {p.job for p in plan.of_type(Preempt)}
    instances = {(n.name, g.index, i.start): i for n in snapshot.nodes for g in n.gpus for i in g.mig_instances}
    dynamic = {(n.name, g.index) for n in snapshot.nodes for g in n.gpus if g.dynamic_mig}
    users = {slot: j.id for j in jobs.values()
             if j.status.holds_resources and j.allocation and (slot := j.allocation.mig_slot) is not None}
    for destroy in plan.of_type(DestroyMig):
        key = (destroy.node, destroy.gpu_index, destroy.start)
        if key[:2] not in dynamic:
            problems.append(f"destroys an instance on {destroy.node} GPU {destroy.gpu_index}, not dynamic-MIG")
        if key not in instances:
            problems.append(f"destroys a missing instance at slice {destroy.start} of {destroy.node} GPU "
                            f"{destroy.gpu_index}")
        user = users.get(key) or (instances[key].job if key in instances else None)
        if user is not None and user in jobs and user not in preempted:
            problems.append(f"destroys the instance of running job {user} without preempting it")
    for create in plan.of_type(CreateMig):
        if (create.node, create.gpu_index) not in dynamic:
            problems.append(f"creates an instance on {create.node} GPU {create.gpu_index}, not dynamic-MIG")
    for bind in plan.of_type(Bind):
        alloc = bind.allocation
        if alloc.kind == AllocationKind.MIG:
            created = any((c.node, c.gpu_index, c.start) == alloc.mig_slot for c in plan.of_type(CreateMig))
            if created and alloc.mig_uuid is not None:
                problems.append(f"bind of {bind.job} to an instance being created carries a UUID")
        elif any((alloc.node, i) in dynamic for i in alloc.gpu_indices):
            problems.append(f"job {bind.job} gets a {alloc.kind} of a dynamic-MIG GPU; those serve MIG only")
    return problems


def _check_quota(jobs: dict[str, Job], state: ClusterState, binds: list[Bind]) -> list[str]:
    """Non-preemptible work of a project stays within its deserved quota."""
    problems = []
    firm: dict[str, Fraction] = dict(state.firm_usage)
    for bind in binds:
        job = jobs.get(bind.job)
        if job is None or job.type.preemptible:
            continue
        firm[job.project] = firm.get(job.project, Fraction(0)) + state.charge_of(bind.allocation)
    for project, used in sorted(firm.items()):
        if used > state.deserved_of(project) and any(
                jobs[b.job].project == project and not jobs[b.job].type.preemptible for b in binds if b.job in jobs):
            problems.append(f"interactive jobs of project {project} would hold {float(used):g} GPUs, above its "
                            f"deserved {float(state.deserved_of(project)):g}")
    return problems
