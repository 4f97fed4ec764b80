"""Shared (non-MIG) GPUs as the placement package sees them: a `FractionCluster` kept in step with
the `ClusterState`, the demand of a job, and the typical demand mix handed to the policy.

A node whose shared GPUs are of several models becomes one placement "slot" per model (the
placement package assumes one model per node); host CPU and memory are the node's, kept in step
on every slot of the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..model import MILLI, Allocation, AllocationKind, Job, RequestKind
from ..units import MiB
from .ordering import submission_key
from .placement import Choice, Demand, FractionCluster, demand_mix
from .state import ClusterState, GpuState, NodeState, canonical_model_name


@dataclass(frozen=True, slots=True)
class Slot:
    node: NodeState
    gpus: tuple[GpuState, ...]


def _slot_gpus(node: NodeState) -> list[list[GpuState]]:
    """A schedulable node's shared GPUs as slots: one per GPU model (and memory), or one without
    GPUs (CPU-only work still lands there); none for a node that takes no work."""
    if not node.schedulable:
        return []
    groups: dict[tuple[str, int], list[GpuState]] = {}
    for gpu in node.gpus.values():
        if not gpu.mig_only:
            groups.setdefault((gpu.model_name, gpu.memory_mib), []).append(gpu)
    return list(groups.values()) or [[]]


def demand_of(job: Job) -> Demand | None:
    """What a job needs from shared GPUs; None when only MIG can serve it."""
    request = job.request
    models = tuple(sorted({canonical_model_name(m) for m in job.gpu_models}))
    host = {"cpu_milli": job.cpu_milli, "memory_mib": job.memory_mib, "gpu_models": models}
    if request is None:
        return Demand(**host)
    if request.kind == RequestKind.GPUS:
        return Demand(gpus=request.gpus or 0, **host)
    if request.kind == RequestKind.FRACTION:
        return Demand(share_milli=request.fraction_milli, **host)
    if request.kind == RequestKind.MEMORY:
        assert request.memory_bytes is not None
        return Demand(gpu_memory_mib=-(-request.memory_bytes // MiB), **host)
    return None


def learning_horizon(seen: int) -> int:
    """How many of the earliest jobs the demand mix is learnt from: the largest power of two
    not above `seen`. The mix then changes only when the jobs seen double, so a policy (and its
    score caches) built for one mix serves every cycle until then, while the mix still follows
    what the cluster has been given."""
    return 1 << (seen.bit_length() - 1) if seen else 0


def learnt_from(jobs: Sequence[Job]) -> list[Job]:
    """The jobs the demand mix is learnt from: the earliest `learning_horizon` of them,
    finished ones included. Only jobs already submitted are in a snapshot, so nothing is learnt
    from the future."""
    return sorted(jobs, key=submission_key)[: learning_horizon(len(jobs))]


def workload_of(jobs: Sequence[Job]) -> list[tuple[Demand, float]]:
    """The demand mix learnt from what the cluster has seen: every demand (CPU and host memory
    included, CPU-only work counted) among the jobs `learnt_from` picks, with its count. Each
    policy takes what it weighs from it: `fgd` the paper's typical pods (the most frequent
    demands covering 95% of the jobs), `default` all of it."""
    return demand_mix([d for d in map(demand_of, learnt_from(jobs)) if d is not None])


class SharedGpus:
    """The placement package's view of every schedulable node's shared GPUs.

    Built empty, then every allocation the state holds is assigned to it, so policies see the
    same history (e.g. jobs per node) they would have seen had they placed that work themselves.
    Changes go through `FractionCluster.assign`/`release` only, as its contract asks.
    """

    def __init__(self, state: ClusterState):
        self.state = state
        self.slots: list[Slot] = []
        self.slots_of: dict[str, list[int]] = {}
        self._slot_of_gpu: dict[tuple[str, int], tuple[int, int]] = {}
        for node in state.nodes.values():
            for gpus in _slot_gpus(node):
                self.slots_of.setdefault(node.name, []).append(len(self.slots))
                for local, gpu in enumerate(gpus):
                    self._slot_of_gpu[(node.name, gpu.index)] = (len(self.slots), local)
                self.slots.append(Slot(node, tuple(gpus)))
        totals = {n.name: n for n in state.snapshot.nodes}
        self.cluster = FractionCluster(
            names=[self._slot_name(i) for i in range(len(self.slots))],
            gpu_free_milli=[[MILLI] * len(s.gpus) for s in self.slots],
            gpu_model=[s.gpus[0].model_name if s.gpus else "" for s in self.slots],
            gpu_memory_mib=[s.gpus[0].memory_mib if s.gpus else 0 for s in self.slots],
            cpu_free_milli=[totals[s.node.name].cpu_milli for s in self.slots],
            memory_free_mib=[totals[s.node.name].memory_mib for s in self.slots],
        )
        self._hold_all(state.allocations)

    def _hold_all(self, allocations: dict[str, Allocation]) -> None:
        for job_id, allocation in sorted(allocations.items()):
            try:
                self.hold(self.state.jobs[job_id], allocation)
            except ValueError:  # an over-committed snapshot: invariants report it; place around it
                continue

    def refresh(self, names: set[str]) -> bool:
        """After the state built the nodes `names` again and held their jobs: point their slots at
        the new nodes, empty them and hold again what the state holds there, as a fresh build
        would. False (nothing changed) when a node's slots would change shape: build anew then."""
        nodes = {n.name: n for n in self.state.snapshot.nodes if n.name in names}
        changes = []
        for name in names:
            node = self.state.nodes.get(name)
            groups = _slot_gpus(node) if node is not None else []
            slots = self.slots_of.get(name, [])
            if len(groups) != len(slots):
                return False
            for index, gpus in zip(slots, groups):
                shape = (tuple(g.index for g in gpus), gpus[0].model_name if gpus else "",
                         gpus[0].memory_mib if gpus else 0)
                if shape != (tuple(g.index for g in self.slots[index].gpus), self.cluster.gpu_model[index],
                             self.cluster.gpu_memory_mib[index]):
                    return False
                changes.append((index, node, gpus))
        for index, node, gpus in changes:
            self.slots[index] = Slot(node, tuple(gpus))
            self.cluster.reset(index, len(gpus), nodes[node.name].cpu_milli, nodes[node.name].memory_mib)
        self._hold_all({job: a for job, a in self.state.allocations.items() if a.node in names})
        return True

    def _slot_name(self, index: int) -> str:
        slot = self.slots[index]
        first = self.slots_of[slot.node.name][0]
        return slot.node.name if index == first else f"{slot.node.name}#{index - first}"

    def hold(self, job: Job, allocation: Allocation) -> None:
        self._change(job, allocation, self.cluster.assign)

    def release(self, job: Job, allocation: Allocation) -> None:
        self._change(job, allocation, self.cluster.release)

    def _change(self, job: Job, allocation: Allocation, apply) -> None:
        """Apply an allocation's GPU share to its slot and its host use to every slot of its node."""
        host = {"cpu_milli": job.cpu_milli, "memory_mib": job.memory_mib}
        for slot in self.slots_of.get(allocation.node, ()):
            local = () if allocation.kind == AllocationKind.MIG else tuple(
                self._slot_of_gpu[(allocation.node, i)][1] for i in allocation.gpu_indices
                if self._slot_of_gpu.get((allocation.node, i), (-1, 0))[0] == slot)
            if local and allocation.kind == AllocationKind.FRACTION:
                demand = Demand(share_milli=allocation.share_milli, **host)
            elif local:
                demand = Demand(gpus=len(local), **host)
            else:
                demand = Demand(**host)
            apply(Choice(slot, local), demand)

    def resolve(self, choice: Choice) -> tuple[NodeState, tuple[GpuState, ...]]:
        slot = self.slots[choice.node]
        return slot.node, tuple(slot.gpus[i] for i in choice.gpus)

    def share_on(self, gpu: GpuState, demand: Demand) -> int:
        """Thousandths of `gpu` a fractional demand takes (> 1000: it does not fit)."""
        return self.cluster.share_on(self._slot_of_gpu[(gpu.node, gpu.index)][0], demand)

    def restricted(self, demand: Demand, job: Job) -> Demand:
        """The demand kept to the slots of the nodes the job may run on."""
        if job.eligible_nodes is None:
            return demand
        slots = frozenset(i for name in job.eligible_nodes for i in self.slots_of.get(name, ()))
        return replace(demand, slots=slots)

    def model_allowed(self, gpu: GpuState, demand: Demand) -> bool:
        return not demand.gpu_models or gpu.model_name in demand.gpu_models
