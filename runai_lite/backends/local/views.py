"""What `runai list nodes`, `runai top node` and `runai list projects` show, read from the store
(pure functions of rows; the daemon keeps the GPUs and partitions there up to date)."""

from __future__ import annotations

from collections import defaultdict

from ...model import JobStatus
from ..api import FractionView, GpuView, MigInstanceView, NodeView, ProjectInfo
from .store import JobRow, PartitionState, Store


def _holders(rows: list[JobRow]) -> list[tuple[JobRow, object]]:
    """Jobs that hold (or are about to use, or still use while stopping) GPU resources."""
    return [(row, row.alloc) for row in rows if row.allocation is not None]


def node_views(store: Store) -> list[NodeView]:
    node = store.config("node")
    if node is None:
        return []
    mechanism = store.config("enforcement_mechanism")
    with store.read() as conn:
        gpus = store.gpus(node, conn)
        layout = store.mig_layout(node, conn)
        rows = store.active_jobs(conn)
    mig_users: dict[tuple[int, int], str] = {}
    fractions: dict[int, list[FractionView]] = defaultdict(list)
    whole: dict[int, str] = {}
    for row, alloc in _holders(rows):
        for index in alloc.gpu_indices:
            if alloc.kind == "mig" and alloc.mig_start is not None:
                mig_users[(index, alloc.mig_start)] = row.key
            elif alloc.kind == "fraction":
                fractions[index].append(FractionView(job=row.key, share_milli=alloc.share_milli))
            else:
                whole[index] = row.key
    instances: dict[int, list[MigInstanceView]] = defaultdict(list)
    for part in layout:
        user = mig_users.get((part.gpu_index, part.start))
        changing = part.state in (PartitionState.CREATING, PartitionState.DESTROYING)
        shown = part.state.value if changing else ("used" if user else "idle")
        instances[part.gpu_index].append(MigInstanceView(profile=part.profile, start=part.start, size=part.size,
                                                         uuid=part.uuid, state=shown, job=user))
    views = tuple(
        GpuView(index=g.gpu_index, uuid=g.uuid, model=g.model, memory_mib=g.memory_mib, simulated=g.simulated,
                dynamic_mig=g.dynamic_mig, mig_enabled=g.mig_enabled, memory_slices=g.memory_slices,
                mig_instances=tuple(instances[g.gpu_index]), fractions=tuple(fractions[g.gpu_index]),
                whole_job=whole.get(g.gpu_index), enforcement=mechanism if fractions[g.gpu_index] else None)
        for g in gpus
    )
    foreign = store.config("foreign_gpus") or {}  # GPUs this daemon leaves alone (gpu_ownership.py)
    return [NodeView(name=node, gpus=views, notes=tuple(foreign[uuid] for uuid in sorted(foreign)))]


def project_infos(store: Store) -> list[ProjectInfo]:
    allocated: dict[str, float] = defaultdict(float)
    running: dict[str, int] = defaultdict(int)
    pending: dict[str, int] = defaultdict(int)
    with store.read() as conn:
        projects = store.projects(conn)
        rows = store.active_jobs(conn)
    for row in rows:
        if row.status == JobStatus.RUNNING:
            running[row.project] += 1
        elif row.status == JobStatus.PENDING:
            pending[row.project] += 1
        alloc = row.alloc
        if alloc is not None and row.status == JobStatus.RUNNING:
            allocated[row.project] += alloc.gpus
    return [ProjectInfo(name=p.name, deserved_gpus=p.deserved_gpus, allocated_gpus=round(allocated[p.name], 3),
                        running=running[p.name], pending=pending[p.name]) for p in projects]
