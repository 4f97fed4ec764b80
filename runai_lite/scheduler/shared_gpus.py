"""Shared (non-MIG) GPUs as the placement package sees them: a `FractionCluster` kept in step with
the `ClusterState`, the demand of a job, and the typical demand mix handed to the policy.

A node whose shared GPUs are of several models becomes one placement "slot" per model (the
placement package assumes one model per node); host CPU and memory are the node's, kept in step
on every slot of the node.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..model import Job, JobStatus
from ..units import MiB
from .placement import Choice, Demand, FractionCluster
from .state import ClusterState, GpuState, NodeState, canonical_model_name


@dataclass(frozen=True, slots=True)
class Slot:
    node: NodeState
    gpus: tuple[GpuState, ...]


def demand_of(job: Job) -> Demand | None:
    """What a job needs from shared GPUs; None when only MIG can serve it."""
    request = job.request
    models = tuple(sorted({canonical_model_name(m) for m in job.gpu_models}))
    host = {"cpu_milli": job.cpu_milli, "memory_mib": job.memory_mib, "gpu_models": models}
    if request is None:
        return Demand(**host)
    if request.kind == "gpus":
        return Demand(gpus=request.gpus or 0, **host)
    if request.kind == "fraction":
        return Demand(share_milli=request.fraction_milli, **host)
    if request.kind == "memory":
        assert request.memory_bytes is not None
        return Demand(gpu_memory_mib=-(-request.memory_bytes // MiB), **host)
    return None


def workload_of(jobs: Sequence[Job]) -> list[tuple[Demand, float]]:
    """The typical demand mix: every live job's GPU demand, weighted by how often it occurs."""
    counts: Counter[Demand] = Counter()
    for job in jobs:
        if job.status.terminal:
            continue
        demand = demand_of(job)
        if demand is not None and (demand.gpus or demand.is_fraction):
            counts[Demand(gpus=demand.gpus, share_milli=demand.share_milli,
                          gpu_memory_mib=demand.gpu_memory_mib)] += 1
    total = sum(counts.values())
    return [(d, n / total) for d, n in sorted(counts.items(), key=lambda kv: (-kv[1], repr(kv[0])))]


class SharedGpus:
    """The placement package's view of every schedulable node's shared GPUs."""

    def __init__(self, state: ClusterState):
        self.state = state
        self.slots: list[Slot] = []
        self.slots_of: dict[str, list[int]] = {}
        for node in state.nodes.values():
            if not node.schedulable:
                continue
            groups: dict[tuple[str, int], list[GpuState]] = {}
            for gpu in node.gpus.values():
                if not gpu.mig_only:
                    groups.setdefault((gpu.model_name, gpu.memory_mib), []).append(gpu)
            for gpus in groups.values() or [[]]:
                self.slots_of.setdefault(node.name, []).append(len(self.slots))
                self.slots.append(Slot(node, tuple(gpus)))
        self.cluster = FractionCluster(
            names=[self._slot_name(i) for i in range(len(self.slots))],
            gpu_free_milli=[[g.free_milli for g in s.gpus] for s in self.slots],
            gpu_model=[s.gpus[0].model_name if s.gpus else "" for s in self.slots],
            gpu_memory_mib=[s.gpus[0].memory_mib if s.gpus else 0 for s in self.slots],
            cpu_free_milli=[s.node.cpu_free for s in self.slots],
            memory_free_mib=[s.node.memory_free for s in self.slots],
        )

    def _slot_name(self, index: int) -> str:
        slot = self.slots[index]
        first = self.slots_of[slot.node.name][0]
        return slot.node.name if index == first else f"{slot.node.name}#{index - first}"

    def refresh(self, node: str) -> None:
        """Copy the state's free capacity of `node` into the placement view."""
        for index in self.slots_of.get(node, ()):
            slot = self.slots[index]
            self.cluster.gpu_free[index] = [g.free_milli for g in slot.gpus]
            self.cluster.cpu_free[index] = slot.node.cpu_free
            self.cluster.memory_free[index] = slot.node.memory_free
        self.cluster.version += 1

    def resolve(self, choice: Choice) -> tuple[NodeState, tuple[GpuState, ...]]:
        slot = self.slots[choice.node]
        return slot.node, tuple(slot.gpus[i] for i in choice.gpus)

    def share_on(self, gpu: GpuState, demand: Demand) -> int:
        """Thousandths of `gpu` a fractional demand takes (> 1000: it does not fit)."""
        slot_index = next(i for i in self.slots_of[gpu.node] if gpu in self.slots[i].gpus)
        return self.cluster.share_on(slot_index, demand)

    def model_allowed(self, gpu: GpuState, demand: Demand) -> bool:
        return not demand.gpu_models or gpu.model_name in demand.gpu_models

    def shared_gpus(self) -> list[GpuState]:
        return [g for slot in self.slots for g in slot.gpus]


def holds_fraction(job: Job) -> bool:
    return job.status in (JobStatus.RUNNING, JobStatus.PREEMPTED) and job.allocation is not None and \
        job.allocation.kind == "fraction"
