"""What the metrics say about a cluster, as pure functions of a snapshot and a plan.

Kept apart from `prometheus_client` so that the figures are plain data a test can compare, and the
registry (`registry.py`) only turns them into samples.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..model import MILLI, AllocationKind, Gpu, Plan, Snapshot

# The kinds of allocation, as the `kind` label names them: whole GPUs, a share of one GPU, a MIG
# partition. A job without GPUs holds none of them and is not counted.
ALLOCATION_KINDS = {AllocationKind.GPU: "whole", AllocationKind.FRACTION: "fraction", AllocationKind.MIG: "mig"}

# Why a job waits, reduced to a few values so that the `reason` label stays bounded. The first
# rule whose words occur in the reason's first clause (what is missing; the clauses after a ';'
# are advice) wins; the scheduler's wording is in scheduler/reasons.py.
PENDING_CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting-for-preemption", ("waiting for preempted job",)),
    ("quota", ("quota", "deserved")),
    ("node-filter", ("node filter", "node type", "no schedulable node in")),
    ("host-resources", ("cpu core", "host memory")),
    ("mig", ("mig",)),
)
OTHER_CAPACITY = "gpu-capacity"


def pending_category(reason: str) -> str:
    """The `reason` label of a pending job: a category of the scheduler's words."""
    text = reason.split(";", 1)[0].lower()
    for category, words in PENDING_CATEGORIES:
        if any(word in text for word in words):
            return category
    return OTHER_CAPACITY


def gpu_mode(gpu: Gpu) -> str:
    """How a GPU is used: partitioned on demand, partitioned by hand, or shared (fractions, whole)."""
    if gpu.dynamic_mig:
        return "dynamic-mig"
    return "mig" if gpu.mig_enabled else "shared"


@dataclass(frozen=True)
class StateFigures:
    """The gauges' values for one snapshot. Keys are label values in the order the metric names them."""

    capacity: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (node, mode) -> GPUs
    allocated: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (node, kind) -> GPUs held
    allocations: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (node, kind) -> jobs
    mig_instances: Mapping[tuple[str, str, str], int] = field(default_factory=dict)  # (node, profile, state)
    jobs: Mapping[str, int] = field(default_factory=dict)  # status -> jobs


def state_figures(snapshot: Snapshot) -> StateFigures:
    capacity: Counter[tuple[str, str]] = Counter()
    instances: Counter[tuple[str, str, str]] = Counter()
    for node in snapshot.nodes:
        for gpu in node.gpus:
            capacity[(node.name, gpu_mode(gpu))] += 1
            for instance in gpu.mig_instances:
                instances[(node.name, instance.profile, instance.state)] += 1
    held: Counter[tuple[str, str]] = Counter()
    allocations: Counter[tuple[str, str]] = Counter()
    jobs: Counter[str] = Counter()
    for job in snapshot.jobs:
        jobs[job.status.value] += 1
        allocation = job.allocation
        if allocation is None or not allocation.gpu_indices or job.status.terminal:
            continue
        key = (allocation.node, ALLOCATION_KINDS[allocation.kind])
        # thousandths summed exactly, so two 0.1 shares are 0.2 and not 0.20000000000000004
        held[key] += len(allocation.gpu_indices) * allocation.share_milli
        allocations[key] += 1
    return StateFigures(capacity=dict(capacity), allocated={k: v / MILLI for k, v in held.items()},
                        allocations=dict(allocations), mig_instances=dict(instances), jobs=dict(jobs))


def pending_figures(plan: Plan, waiting: Mapping[str, str] | None = None) -> dict[str, int]:
    """Pending jobs by category: the plan's reasons, and the backend's own (a bind waiting for its
    device, a nominated preemptor) for jobs the plan placed but that do not run yet."""
    categories = Counter(pending_category(why) for job, why in plan.pending if job not in (waiting or {}))
    categories.update((waiting or {}).values())
    return dict(categories)


def preempted_projects(preempted: Iterable[str], snapshot: Snapshot) -> list[str]:
    """The project of each job preempted."""
    projects = {job.id: job.project for job in snapshot.jobs}
    return [projects.get(job, "") for job in preempted]
