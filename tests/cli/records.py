"""Backend records for CLI tests: a MIG A100 with partitions, a T4 shared by fractions, and jobs."""

from __future__ import annotations

from runai_lite.backends.api import Event, FractionView, GpuView, JobInfo, MigInstanceView, NodeView, ProjectInfo
from runai_lite.model import Allocation, GpuRequest, JobStatus, JobType

NOW = 1000.0


def mig_job(name: str, start: int, status: JobStatus = JobStatus.RUNNING) -> JobInfo:
    return JobInfo(
        name=name, project="team-a", type=JobType.TRAIN, status=status, image="gcr.io/run-ai-demo/quickstart-cuda",
        user="alice", command=("sleep", "600"), submitted_at=NOW - 90, started_at=NOW - 80,
        request=GpuRequest(mig_profile="2g.10gb"),
        allocation=Allocation(kind="mig", node="host-1", gpu_indices=(0,), gpu_uuids=("GPU-aaaa",), share_milli=286,
                              memory_mib=9856, mig_profile="2g.10gb", mig_start=start, mig_size=2,
                              mig_uuid=f"MIG-{name}"),
        simulated=True,
        events=(Event(time=NOW - 90, kind="Submitted", message="submitted"),
                Event(time=NOW - 85, kind="PartitionCreated", message=f"created 2g.10gb at slice {start}"),
                Event(time=NOW - 80, kind="Bound", message="bound to host-1 GPU 0")),
    )


def fraction_job() -> JobInfo:
    return JobInfo(
        name="frac1", project="team-b", type=JobType.INTERACTIVE, status=JobStatus.RUNNING, image="pytorch",
        user="bob", submitted_at=NOW - 7200, started_at=NOW - 7100, request=GpuRequest(fraction=0.25),
        allocation=Allocation(kind="fraction", node="host-1", gpu_indices=(1,), gpu_uuids=("GPU-bbbb",),
                              share_milli=250, memory_mib=3840),
        enforcement="hami-core", memory_limit_mib=3840,
    )


def pending_job() -> JobInfo:
    return JobInfo(
        name="big", project="team-a", type=JobType.INTERACTIVE_PREEMPTIBLE, status=JobStatus.PENDING, image="img",
        user="alice", submitted_at=NOW - 30, request=GpuRequest(memory_bytes=30 * 10**9),
        pending_reason="no GPU has 30GB free",
    )


def jobs() -> list[JobInfo]:
    return [mig_job("mig1", 0), mig_job("mig2", 2), fraction_job(), pending_job()]


def nodes() -> list[NodeView]:
    a100 = GpuView(
        index=0, uuid="GPU-aaaa", model="A100-SXM4-40GB", memory_mib=40536, simulated=True, dynamic_mig=True,
        mig_enabled=True, memory_slices=8,
        mig_instances=(
            MigInstanceView(profile="2g.10gb", start=0, size=2, uuid="MIG-mig1", state="used", job="team-a/mig1"),
            MigInstanceView(profile="2g.10gb", start=2, size=2, uuid="MIG-mig2", state="used", job="team-a/mig2"),
            MigInstanceView(profile="2g.10gb", start=4, size=2, uuid="MIG-idle", state="idle"),
        ),
    )
    t4 = GpuView(index=1, uuid="GPU-bbbb", model="T4", memory_mib=15360, simulated=True,
                 fractions=(FractionView(job="team-b/frac1", share_milli=250),), enforcement="hami-core")
    return [NodeView(name="host-1", gpus=(a100, t4))]


def projects() -> list[ProjectInfo]:
    return [ProjectInfo(name="team-a", deserved_gpus=2, allocated_gpus=0.571, running=2, pending=1),
            ProjectInfo(name="team-b", deserved_gpus=1, allocated_gpus=0.25, running=1)]
