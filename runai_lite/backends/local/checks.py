"""Invariants over the embedded node's store and its GPU driver, checked after every daemon cycle
when `RUNAI_LITE_CHECK_INVARIANTS=1` (the tests set it); problems go to the daemon log and to
`invariants.log` in the home, where a test can find them.

Beyond the scheduler's own snapshot checks (shares ≤ 1, partitions inside the GPU and not
overlapping, one job per partition), it holds the store to the hardware: a partition the store
calls ready exists on the GPU with the same UUID, no partition exists on a dynamic-MIG GPU that the
store does not know about (a leak), and a running MIG job runs on the partition it was given.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...gpu.driver import DriverError, GpuDriver
from ...model import JobStatus, Snapshot
from ...scheduler.invariants import check_snapshot
from .store import JobRow, PartitionRow, PartitionState, Store

CHECK_ENV = "RUNAI_LITE_CHECK_INVARIANTS"


def check_node(store: Store, driver: GpuDriver, node: str, snapshot: Snapshot) -> list[str]:
    problems = [f"snapshot: {p}" for p in check_snapshot(snapshot)]
    rows = store.active_jobs()
    problems += _check_jobs(rows)
    layout = store.mig_layout(node)
    for gpu in store.gpus(node):
        if not gpu.dynamic_mig:
            continue
        index = gpu.gpu_index
        try:
            actual = {(m.start, m.profile): m for m in driver.mig_instances(index) if m.complete}
        except DriverError as error:
            problems.append(f"GPU {index}: cannot list its partitions ({error.message})")
            continue
        parts = {(p.start, p.profile): p for p in layout if p.gpu_index == index}
        for key, part in parts.items():
            found = actual.get(key)
            if part.state == PartitionState.READY and (found is None or found.uuid != part.uuid):
                problems.append(f"GPU {index}: the store's ready {key[1]} at slice {key[0]} is not on the GPU "
                                f"as {part.uuid}")
        for key in actual.keys() - parts.keys():
            problems.append(f"GPU {index}: {key[1]} at slice {key[0]} exists on the GPU but not in the store (leaked)")
        problems += _check_mig_jobs(rows, index, parts)
    return problems


def _check_jobs(rows: Sequence[JobRow]) -> list[str]:
    problems = []
    for row in rows:
        if row.status in (JobStatus.RUNNING, JobStatus.PREEMPTED) and (row.attempts < 1 or row.allocation is None):
            problems.append(f"job {row.key} is {row.status} without an attempt or an allocation")
    return problems


def _check_mig_jobs(rows: Sequence[JobRow], index: int, parts: dict[tuple[int, str], PartitionRow]) -> list[str]:
    problems = []
    users: dict[tuple[int, str], list[str]] = {}
    for row in rows:
        alloc = row.alloc
        if alloc is None or alloc.kind != "mig" or alloc.gpu_indices[0] != index:
            continue
        key = (alloc.mig_start, alloc.mig_profile)
        part = parts.get(key)
        if row.status == JobStatus.RUNNING and not row.delete_requested:
            users.setdefault(key, []).append(row.key)
            if part is None or part.state in (PartitionState.CREATING, PartitionState.DESTROYING):
                problems.append(f"job {row.key} runs on {key[1]} at slice {key[0]} of GPU {index}, which is "
                                f"{'missing' if part is None else part.state.value}")
            elif part.uuid != alloc.mig_uuid:
                problems.append(f"job {row.key} runs on {alloc.mig_uuid} but the partition is {part.uuid}")
    for key, holders in users.items():
        if len(holders) > 1:
            problems.append(f"{key[1]} at slice {key[0]} of GPU {index} is used by {', '.join(holders)}")
    return problems
