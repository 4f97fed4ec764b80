"""What `runai list nodes`, `runai top node` and `runai list projects` show, read from the store
(pure functions of rows; the daemon keeps the GPUs and partitions there up to date)."""

from __future__ import annotations

from collections import defaultdict

from ...model import JobStatus
from ..api import FractionView, GpuView, MigInstanceView, NodeView, ProjectInfo
from .snapshot import CREATING, DESTROYING
from .store import JobRow, Store


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
        index, start = part["gpu_index"], part["start"]
        user = mig_users.get((index, start))
        state = part["state"]
        shown = state if state in (CREATING, DESTROYING) else ("used" if user else "idle")
        instances[index].append(MigInstanceView(profile=part["profile"], start=start, size=part["size"],
                                                uuid=part["uuid"], state=shown, job=user))
    views = tuple(
        GpuView(index=g["gpu_index"], uuid=g["uuid"], model=g["model"], memory_mib=g["memory_mib"],
                simulated=bool(g["simulated"]), dynamic_mig=bool(g["dynamic_mig"]), mig_enabled=bool(g["mig_enabled"]),
                memory_slices=g["memory_slices"], mig_instances=tuple(instances[g["gpu_index"]]),
                fractions=tuple(fractions[g["gpu_index"]]), whole_job=whole.get(g["gpu_index"]),
                enforcement=mechanism if fractions[g["gpu_index"]] else None)
        for g in gpus
    )
    return [NodeView(name=node, gpus=views)]


def project_infos(store: Store) -> list[ProjectInfo]:
    allocated: dict[str, float] = defaultdict(float)
    running: dict[str, int] = defaultdict(int)
    pending: dict[str, int] = defaultdict(int)
    with store.read() as conn:
        projects = conn.execute("SELECT name, deserved_gpus FROM projects ORDER BY name").fetchall()
        rows = store.active_jobs(conn)
    for row in rows:
        if row.status == JobStatus.RUNNING:
            running[row.project] += 1
        elif row.status == JobStatus.PENDING:
            pending[row.project] += 1
        alloc = row.alloc
        if alloc is not None and row.status == JobStatus.RUNNING:
            allocated[row.project] += alloc.gpus
    return [ProjectInfo(name=p["name"], deserved_gpus=p["deserved_gpus"], allocated_gpus=round(allocated[p["name"]], 3),
                        running=running[p["name"]], pending=pending[p["name"]]) for p in projects]
