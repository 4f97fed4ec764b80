"""What `runai top job` shows on the embedded node: each unfinished job with the processes of it
that the GPU driver sees on its devices, and the GPU memory they use where NVML reports it.

A device may be shared (fractions), so a process counts for a job only when it is one of that
job's processes (its environment names the job, as the daemon's audit finds them); the simulated
driver knows the processes the daemon registered, NVML every process on the device.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ...gpu.driver import DriverError, GpuDriver
from ...model import JobStatus
from ..api import GpuProcess, JobInfo, JobUsage


def job_usage(jobs: Sequence[tuple[str, JobInfo]], driver: GpuDriver | None, job_pids: Mapping[str, Sequence[int]],
              why_unmeasured: str | None = None) -> list[JobUsage]:
    """(job id, job) pairs as rows: the processes of each running job on its devices. Without a
    driver (`why_unmeasured` says why) nothing is measured."""
    rows = []
    for job_id, job in jobs:
        alloc = job.allocation
        if job.status is not JobStatus.RUNNING or alloc is None or not alloc.device_uuids:
            rows.append(JobUsage(job=job))
            continue
        if driver is None:
            rows.append(JobUsage(job=job, note=why_unmeasured))
            continue
        mine = set(job_pids.get(job_id, ()))
        processes: list[GpuProcess] = []
        try:
            for device in alloc.device_uuids:
                found = driver.process_memory(device)
                processes += [GpuProcess(pid=pid, device=device, used_memory_mib=used)
                              for pid, used in sorted(found.items()) if pid in mine]
        except DriverError as error:
            rows.append(JobUsage(job=job, note=f"the GPU driver could not be asked: {error}"))
            continue
        rows.append(JobUsage(job=job, processes=tuple(processes), measured=True))
    return rows
