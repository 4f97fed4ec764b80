"""Free capacity of every node's shareable GPUs, in thousandths of a GPU.

The Python lists (`gpu_free`, `cpu_free`, `memory_free`) are the readable view; numpy mirrors of the
same numbers let policies score every node at once. Change capacity only through `assign` and
`release`: they keep both in step and stamp the node with a new version, which is what policies
key their per-node score caches on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...model import MILLI

ABSENT = -1  # free share of GPU slots a node does not have (nodes differ in GPU count): never fits, never idle


@dataclass(frozen=True, slots=True)
class Demand:
    """What one job needs from one node.

    Exactly one GPU form applies: `gpus` whole GPUs, a fraction `share_milli` of one GPU, or
    `gpu_memory_mib` of one GPU (its share depends on the GPU's memory); none of them = CPU only.
    """

    gpus: int = 0
    share_milli: int = 0
    gpu_memory_mib: int = 0
    cpu_milli: int = 0
    memory_mib: int = 0
    gpu_models: tuple[str, ...] = ()
    slots: frozenset[int] | None = None  # the nodes (by index) it may use; None = any

    @property
    def is_fraction(self) -> bool:
        return self.share_milli > 0 or self.gpu_memory_mib > 0

    @property
    def needs_gpu(self) -> bool:
        return self.gpus > 0 or self.is_fraction

    @property
    def affinity(self) -> int:
        """The GPU-affinity class the FGD paper's GpuClustering groups by: 0 = shares a GPU,
        k = k whole GPUs, -1 = no GPU."""
        if self.is_fraction:
            return 0
        return self.gpus if self.gpus else -1


@dataclass(frozen=True, slots=True)
class Choice:
    """A node (by index in the cluster) and the GPUs (by index on that node) a demand gets."""

    node: int
    gpus: tuple[int, ...]


class FractionCluster:
    """Mutable free capacity: per node CPU, host memory and each GPU's free share.

    Nodes are kept in the order given; policies break ties by node name, as the FGD simulator does.
    """

    def __init__(
        self,
        names: Sequence[str],
        gpu_free_milli: Sequence[Sequence[int]],
        gpu_model: Sequence[str] = (),
        gpu_memory_mib: Sequence[int] = (),
        cpu_free_milli: Sequence[int | None] = (),
        memory_free_mib: Sequence[int | None] = (),
    ):
        count = len(names)
        self.names = list(names)
        self.gpu_free = [list(free) for free in gpu_free_milli]
        self.gpu_model = list(gpu_model) or [""] * count
        self.gpu_memory_mib = list(gpu_memory_mib) or [0] * count
        self.cpu_free = list(cpu_free_milli) or [None] * count
        self.memory_free = list(memory_free_mib) or [None] * count
        if not all(len(column) == count for column in (self.gpu_free, self.gpu_model, self.gpu_memory_mib,
                                                       self.cpu_free, self.memory_free)):
            raise ValueError("every per-node column must have one entry per node")
        self.version = 0  # bumped on every change, so policies may cache per-node scores
        self._build_arrays()

    def _build_arrays(self) -> None:
        count = len(self.names)
        width = max((len(free) for free in self.gpu_free), default=0) or 1
        self.free = np.full((count, width), ABSENT, dtype=np.int64)
        for node, free in enumerate(self.gpu_free):
            self.free[node, : len(free)] = free
        self.gpu_count = np.array([len(free) for free in self.gpu_free], dtype=np.int64)
        # Unknown CPU or memory (None) never limits: +inf passes every comparison.
        self.cpu = np.array([np.inf if c is None else c for c in self.cpu_free], dtype=np.float64)
        self.memory = np.array([np.inf if m is None else m for m in self.memory_free], dtype=np.float64)
        # The CPU and memory given when built or last reset: a node's whole capacity where the
        # caller builds the cluster empty, as SharedGpus does (scarcity.py reads them).
        self.cpu_capacity, self.memory_capacity = self.cpu.copy(), self.memory.copy()
        self.gpu_memory = np.array(self.gpu_memory_mib, dtype=np.int64)
        models = sorted(set(self.gpu_model))
        self.model_index = {model: i for i, model in enumerate(models)}
        self.model_id = np.array([self.model_index[m] for m in self.gpu_model], dtype=np.int64)
        self._allowing: dict[tuple[str, ...], np.ndarray] = {}  # `nodes_allowing`'s masks
        self.name_rank = np.empty(count, dtype=np.int64)
        self.name_rank[np.argsort(np.array(self.names, dtype=object), kind="stable")] = np.arange(count)
        # Jobs per node by GPU-affinity class (column 0 = fractions, k = k whole GPUs).
        self.affinity = np.zeros((count, width + 1), dtype=np.int64)
        self.node_version = np.zeros(count, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    # ---- per-node questions (readable, one node at a time) -----------------------------------

    def share_on(self, node: int, demand: Demand) -> int:
        """Thousandths of one GPU of `node` that a fractional demand takes (> 1000: does not fit)."""
        if demand.share_milli:
            return demand.share_milli
        memory = self.gpu_memory_mib[node]
        if not memory:
            return MILLI + 1
        return -(-demand.gpu_memory_mib * MILLI // memory)

    def host_fits(self, node: int, demand: Demand) -> bool:
        cpu, memory = self.cpu_free[node], self.memory_free[node]
        if cpu is not None and demand.cpu_milli > cpu:
            return False
        if memory is not None and demand.memory_mib > memory:
            return False
        if demand.gpu_models and demand.needs_gpu and self.gpu_model[node] not in demand.gpu_models:
            return False
        return demand.slots is None or node in demand.slots

    def gpu_options(self, node: int, demand: Demand) -> list[tuple[int, ...]]:
        """The GPU sets on `node` that could serve `demand` (one entry per fitting GPU for a
        fraction; the lowest-indexed free GPUs for whole GPUs; `()` for CPU-only)."""
        if not self.host_fits(node, demand):
            return []
        free = self.gpu_free[node]
        if demand.is_fraction:
            share = self.share_on(node, demand)
            return [(g,) for g, f in enumerate(free) if f >= share]
        if demand.gpus:
            whole = [g for g, f in enumerate(free) if f == MILLI]
            return [tuple(whole[: demand.gpus])] if len(whole) >= demand.gpus else []
        return [()]

    # ---- the same questions for many nodes at once (numpy) -----------------------------------

    def shares(self, nodes: np.ndarray, demand: Demand) -> np.ndarray:
        """`share_on` for each of `nodes` (int array)."""
        if demand.share_milli or not demand.gpu_memory_mib:
            return np.full(nodes.shape, demand.share_milli, dtype=np.int64)
        memory = self.gpu_memory[nodes]
        share = -(-demand.gpu_memory_mib * MILLI // np.maximum(memory, 1))
        return np.where(memory > 0, share, MILLI + 1)

    def hosts_fit(self, nodes: np.ndarray, demand: Demand) -> np.ndarray:
        """`host_fits` for each of `nodes`: CPU, host memory, the GPU-model and node constraints."""
        fits = (self.cpu[nodes] >= demand.cpu_milli) & (self.memory[nodes] >= demand.memory_mib)
        if demand.needs_gpu:
            fits &= self.models_allowed(nodes, demand.gpu_models)
        if demand.slots is not None:
            fits &= np.isin(nodes, np.fromiter(demand.slots, dtype=np.int64, count=len(demand.slots)))
        return fits

    def models_allowed(self, nodes: np.ndarray, models: tuple[str, ...]) -> np.ndarray:
        if not models:
            return np.ones(nodes.shape, dtype=bool)
        return np.isin(self.model_id[nodes], [self.model_index[m] for m in models if m in self.model_index])

    def nodes_allowing(self, models: tuple[str, ...]) -> np.ndarray:
        """`models_allowed` for every node, worked out once per model list (a node's GPU model
        never changes); the mask is shared, so it is read-only."""
        mask = self._allowing.get(models)
        if mask is None:
            mask = self._allowing[models] = self.models_allowed(np.arange(len(self)), models)
            mask.flags.writeable = False
        return mask

    def whole_gpus(self, node: int, count: int) -> tuple[int, ...]:
        """The `count` lowest-indexed fully free GPUs of `node` (the simulator's exclusive pick)."""
        return tuple(int(g) for g in np.flatnonzero(self.free[node] == MILLI)[:count])

    # ---- changes --------------------------------------------------------------------------------

    def assign(self, choice: Choice, demand: Demand) -> None:
        self._apply(choice, demand, -1)

    def release(self, choice: Choice, demand: Demand) -> None:
        self._apply(choice, demand, +1)

    def reset(self, node: int, gpus: int, cpu_free_milli: int | None, memory_free_mib: int | None) -> None:
        """Empty `node` again: its `gpus` GPUs wholly free, nothing assigned, the CPU and memory
        given (its GPU model and count stay). A new version, as after any change."""
        if gpus != self.gpu_count[node]:
            raise ValueError(f"{self.names[node]} has {self.gpu_count[node]} GPUs, not {gpus}")
        self.gpu_free[node] = [MILLI] * gpus
        self.free[node, :gpus] = MILLI
        self.cpu_free[node], self.memory_free[node] = cpu_free_milli, memory_free_mib
        self.cpu[node] = np.inf if cpu_free_milli is None else cpu_free_milli
        self.memory[node] = np.inf if memory_free_mib is None else memory_free_mib
        self.cpu_capacity[node], self.memory_capacity[node] = self.cpu[node], self.memory[node]
        self.affinity[node] = 0
        self.version += 1
        self.node_version[node] = self.version

    def _apply(self, choice: Choice, demand: Demand, sign: int) -> None:
        node = choice.node
        per_gpu = self.share_on(node, demand) if demand.is_fraction else MILLI
        for gpu in choice.gpus:
            value = self.gpu_free[node][gpu] + sign * per_gpu
            if not 0 <= value <= MILLI:
                raise ValueError(f"GPU {gpu} of {self.names[node]} would have free share {value}")
        for gpu in choice.gpus:
            self.gpu_free[node][gpu] += sign * per_gpu
            self.free[node, gpu] += sign * per_gpu
        if self.cpu_free[node] is not None:
            self.cpu_free[node] += sign * demand.cpu_milli
            self.cpu[node] = self.cpu_free[node]
        if self.memory_free[node] is not None:
            self.memory_free[node] += sign * demand.memory_mib
            self.memory[node] = self.memory_free[node]
        if demand.affinity >= 0:
            self.affinity[node, min(demand.affinity, self.affinity.shape[1] - 1)] -= sign
        self.version += 1
        self.node_version[node] = self.version
