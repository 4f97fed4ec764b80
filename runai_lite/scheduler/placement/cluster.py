"""Free capacity of every node's shareable GPUs, in thousandths of a GPU."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...model import MILLI


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

    @property
    def is_fraction(self) -> bool:
        return self.share_milli > 0 or self.gpu_memory_mib > 0


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

    def __len__(self) -> int:
        return len(self.names)

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
        if demand.gpu_models and (demand.gpus or demand.is_fraction) and self.gpu_model[node] not in demand.gpu_models:
            return False
        return True

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

    def assign(self, choice: Choice, demand: Demand) -> None:
        self._apply(choice, demand, -1)

    def release(self, choice: Choice, demand: Demand) -> None:
        self._apply(choice, demand, +1)

    def _apply(self, choice: Choice, demand: Demand, sign: int) -> None:
        node = choice.node
        per_gpu = self.share_on(node, demand) if demand.is_fraction else MILLI
        for gpu in choice.gpus:
            value = self.gpu_free[node][gpu] + sign * per_gpu
            if not 0 <= value <= MILLI:
                raise ValueError(f"GPU {gpu} of {self.names[node]} would have free share {value}")
            self.gpu_free[node][gpu] = value
        if self.cpu_free[node] is not None:
            self.cpu_free[node] += sign * demand.cpu_milli
        if self.memory_free[node] is not None:
            self.memory_free[node] += sign * demand.memory_mib
        self.version += 1
