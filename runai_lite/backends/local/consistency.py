"""The embedded node's consistency check: the store, the GPU driver and the live processes agree.

Run by the daemon every `consistency_seconds` (`daemon/audit.py`, which also acts on what it finds),
after every cycle when `RUNAI_LITE_CHECK_INVARIANTS=1` (the tests and the crash and concurrency
harnesses set it), and by the harnesses themselves after a crash and restart. It
widens `checks.check_node` (the scheduler's snapshot invariants, and the store held to the GPUs'
partitions: none leaked, every ready one present) with what a crash or a race would break:

- every job row has a known status, and no two live rows share a project and name;
- a finished job holds no allocation, and no process of it still runs;
- only a Running or stopping (Preempted, or being deleted) job has processes, one attempt at a
  time, and never a job that has not been started;
- what the live processes hold, taken together, fits the hardware: no GPU's shares above 1, no
  whole GPU shared, no MIG partition used by two jobs, no job on a partition that is not there.
  The scheduler's snapshot leaves stopping jobs out (their resources are promised onwards), so
  this is the check that catches a job started before the one it preempted has stopped.

Which processes run is read from /proc: a job's processes carry `RUNAI_JOB_UUID` in their
environment (the shim, which only records how the job ended, is not counted). Linux only, like the
embedded mode's process supervision.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from ...gpu.driver import DriverError, GpuDriver
from ...model import JobStatus
from ...scheduler.invariants import check_snapshot
from .checks import check_node
from .snapshot import build_snapshot
from .store import GpuRow, JobRow, PartitionRow, PartitionState, Store
from .tracking.protocol import SHIM

JOB_ID_VARIABLE = b"RUNAI_JOB_UUID="
_STATUSES = {s.value for s in JobStatus}


def check_consistency(store: Store, driver: GpuDriver, node: str) -> list[str]:
    """Every broken invariant, as one sentence each; empty when all hold."""
    return audit(store, driver, node)[0]


def audit(store: Store, driver: GpuDriver, node: str) -> tuple[list[str], list[tuple[JobRow, list[int], str]]]:
    """Every broken invariant, and the processes that should not run (`stray_processes`)."""
    with store.read() as conn:
        rows = store.all_jobs(conn)
        gpus = store.gpus(node, conn)
        layout = store.mig_layout(node, conn)
        projects = store.projects(conn)
    active = [r for r in rows if r.status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.PREEMPTED)]
    problems = check_node(store, driver, node, build_snapshot(node, gpus, layout, active, projects))
    problems += check_rows(rows)
    live = live_job_processes({r.id for r in rows})
    problems += check_processes(rows, live)
    running = [dataclasses.replace(r, status=JobStatus.RUNNING.value, delete_requested=0)
               for r in rows if r.id in live and r.allocation is not None]
    physical = build_snapshot(node, gpus, partitions_on_gpus(driver, gpus), running, projects)
    problems += [f"running processes: {p}" for p in check_snapshot(physical)]
    return problems, stray_processes(rows, live)


def partitions_on_gpus(driver: GpuDriver, gpus: Sequence[GpuRow]) -> list[PartitionRow]:
    """The MIG partitions that exist on the GPUs now, as layout rows (a GPU the driver cannot list
    is left out; `check_node` reports it)."""
    found = []
    for gpu in gpus:
        if not gpu.mig_enabled:
            continue
        try:
            instances = driver.mig_instances(gpu.gpu_index)
        except DriverError:
            continue
        found += [PartitionRow(node=gpu.node, gpu_index=m.gpu_index, start=m.start, profile=m.profile, size=m.size,
                               state=PartitionState.READY, uuid=m.uuid) for m in instances if m.complete]
    return found


def check_rows(rows: Sequence[JobRow]) -> list[str]:
    problems = []
    live_names: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        if row.status not in _STATUSES:
            problems.append(f"job {row.key} ({row.id}) has an unknown status {row.status!r}")
            continue
        if row.status != JobStatus.DELETED:
            live_names.setdefault((row.project, row.name), []).append(row.id)
        if JobStatus(row.status).terminal and (row.allocation is not None or row.pid is not None):
            problems.append(f"job {row.key} is {row.status} but still holds "
                            f"{'an allocation' if row.allocation is not None else f'pid {row.pid}'}")
        if row.status == JobStatus.SUSPENDED and (row.allocation is not None or row.pid is not None):
            problems.append(f"job {row.key} is Suspended but still holds "
                            f"{'an allocation' if row.allocation is not None else f'pid {row.pid}'}")
        if row.status == JobStatus.PREEMPTED and not row.job_type.preemptible:
            problems.append(f"job {row.key} is an interactive job, yet Preempted")
        if row.attempts < 0 or row.failures < 0:
            problems.append(f"job {row.key} counts {row.attempts} attempts and {row.failures} failures")
    for (project, name), ids in live_names.items():
        if len(ids) > 1:
            problems.append(f"job {project}/{name} is recorded {len(ids)} times: {', '.join(ids)}")
    return problems


def stray_processes(rows: Sequence[JobRow], live: dict[str, list[int]]) -> list[tuple[JobRow, list[int], str]]:
    """Processes of jobs that should have none, with what is wrong: the job was not started or is
    finished, or it runs without an allocation."""
    strays = []
    for row in rows:
        pids = live.get(row.id)
        if not pids:
            continue
        if row.status not in (JobStatus.RUNNING, JobStatus.PREEMPTED):
            strays.append((row, pids, "bound, not started" if row.bound else row.status))
        elif row.allocation is None:
            strays.append((row, pids, "running without an allocation"))
    return strays


def check_processes(rows: Sequence[JobRow], live: dict[str, list[int]]) -> list[str]:
    """Processes only for jobs that were started and are not finished."""
    problems = []
    for row, pids, state in stray_processes(rows, live):
        if state == "running without an allocation":
            problems.append(f"job {row.key} runs (pid {pids[0]}) without an allocation")
        else:
            problems.append(f"job {row.key} is {state} but its processes still run (pid {', '.join(map(str, pids))})")
    return problems


def live_job_processes(job_ids: Iterable[str], proc: Path = Path("/proc")) -> dict[str, list[int]]:
    """job id → the pids of live processes (not shims, not zombies) whose environment names it."""
    wanted = {job_id.encode(): job_id for job_id in job_ids}
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    shim = str(SHIM).encode()
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        try:
            environ = (proc / entry.name / "environ").read_bytes()
            if JOB_ID_VARIABLE not in environ:
                continue
            if shim in (proc / entry.name / "cmdline").read_bytes():
                continue
        except OSError:  # gone, or not ours to read
            continue
        for variable in environ.split(b"\0"):
            if variable.startswith(JOB_ID_VARIABLE):
                job_id = wanted.get(variable[len(JOB_ID_VARIABLE):])
                if job_id is not None:
                    found.setdefault(job_id, []).append(int(entry.name))
                break
    return found
