"""The scheduler's working copy of a snapshot: free capacity per GPU and node, MIG layouts, who holds
what, and each project's usage. Built once per `plan()` call and mutated as the plan is decided.

Jobs in status Running or Preempted hold their allocation (a Preempted job is still stopping);
only Pending jobs are placed. A MIG instance is *used* when a holding job's allocation points at
it; otherwise it is idle (lazy deallocation keeps finished jobs' partitions for reuse).
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction

from ..gpu.catalog import GpuModel, MigProfile, default_catalog
from ..gpu.mig_layout import Placed
from ..model import MILLI, Allocation, AllocationKind, Gpu, Job, JobStatus, Node, Snapshot


@dataclass(slots=True)
class Instance:
    """A MIG GPU instance as the scheduler tracks it (existing, or created by this plan)."""

    profile: MigProfile
    start: int
    uuid: str | None = None
    job: str | None = None  # holding job id; None = idle
    foreign: bool = False  # used by something the scheduler does not know: never touched

    @property
    def size(self) -> int:
        return self.profile.memory_slices

    @property
    def end(self) -> int:
        return self.start + self.profile.memory_slices

    @property
    def idle(self) -> bool:
        return self.job is None and not self.foreign

    def placed(self) -> Placed:
        return Placed(self.start, self.profile.name)


@dataclass(slots=True, eq=False)
class GpuState:
    node: str
    index: int
    uuid: str
    model_name: str
    memory_mib: int
    model: GpuModel | None
    mig_only: bool  # dynamic-MIG (or statically MIG-enabled) GPUs serve MIG requests only
    dynamic: bool  # the scheduler may create and destroy instances here
    static_mig: bool = False  # MIG set up by an administrator: its instances may be used, never changed
    free_milli: int = MILLI
    holders: dict[str, int] = field(default_factory=dict)  # job id -> share of this GPU (shared GPUs)
    fraction_holders: int = 0  # jobs holding a fraction here (a reservation exists while > 0)
    instances: list[Instance] = field(default_factory=list)
    version: int = 0  # bumped on every change (cache key for MIG evaluations)
    _signature: tuple | None = None

    @property
    def mig_usable(self) -> bool:
        return self.dynamic or self.static_mig

    @property
    def label(self) -> str:
        return f"{self.node} GPU {self.index}"

    def layout(self) -> list[Placed]:
        return [inst.placed() for inst in self.instances]

    def signature(self) -> tuple:
        """What MIG choices on this GPU depend on: model, whether its layout may change (a static
        one offers only its instances), and each instance's place and use."""
        if self._signature is None or self._signature[0] != self.version:
            layout = tuple(sorted((i.start, i.profile.name, i.idle) for i in self.instances))
            self._signature = (self.version, (self.model_name, self.dynamic, layout))
        return self._signature[1]

    def instance_at(self, start: int) -> Instance | None:
        for inst in self.instances:
            if inst.start == start:
                return inst
        return None


@dataclass(slots=True)
class NodeState:
    name: str
    schedulable: bool
    cpu_free: int | None
    memory_free: int | None
    gpus: dict[int, GpuState]

    def host_fits(self, cpu_milli: int, memory_mib: int, extra_cpu: int = 0, extra_memory: int = 0) -> bool:
        if self.cpu_free is not None and cpu_milli > self.cpu_free + extra_cpu:
            return False
        return not (self.memory_free is not None and memory_mib > self.memory_free + extra_memory)


def lookup_model(name: str) -> GpuModel | None:
    return default_catalog().find(name)


def canonical_model_name(name: str) -> str:
    """The catalog's name for a GPU model (so `NVIDIA A100-SXM4-40GB` matches `A100-SXM4-40GB`)."""
    model = lookup_model(name)
    return model.name if model else name


def mig_charge(model: GpuModel | None, profile_name: str | None, share_milli: int) -> Fraction:
    """A MIG instance counts as compute-slices / the GPU's compute slices of a GPU."""
    profile = model.find_profile(profile_name) if model is not None and model.compute_slices and profile_name else None
    if model is not None and profile is not None:
        return model.compute_share(profile)
    return Fraction(share_milli, MILLI)


def mig_share_milli(model: GpuModel, profile: MigProfile) -> int:
    """The share `runai list` shows for a MIG instance (its compute fraction, in thousandths)."""
    return max(1, min(MILLI, round(MILLI * profile.compute / model.compute_slices)))


def _profile_for(model: GpuModel | None, name: str, size: int | None) -> MigProfile:
    found = model.find_profile(name) if model is not None else None
    if found is not None:
        return found
    # A profile the catalog does not know (NVML reported it): occupy its slices, guess its compute.
    slices = size or 1
    total = model.compute_slices if model and model.compute_slices else 7
    return MigProfile(name=name, id=-1, compute=min(slices, total), memory_slices=slices, memory_mib=1,
                      max_instances=8, starts=tuple(range(8)))


def holders(snapshot: Snapshot) -> list[Job]:
    """The snapshot's jobs that hold an allocation, by id (the order they are held in)."""
    return sorted((j for j in snapshot.jobs if j.status.holds_resources and j.allocation is not None),
                  key=lambda j: j.id)


class ClusterState:
    """Mutable view of a snapshot. Every change goes through `hold`, `release`, `create`, `destroy`."""

    def __init__(self, snapshot: Snapshot):
        self.follow(snapshot)
        self.usage: dict[str, Fraction] = {}  # project -> GPUs held (all jobs)
        self.firm_usage: dict[str, Fraction] = {}  # project -> GPUs held by non-preemptible jobs
        self.allocations: dict[str, Allocation] = {}  # job id -> what it holds now
        self.charges: dict[str, Fraction] = {}
        self.nodes: dict[str, NodeState] = {}
        self._groups: dict[tuple, list[GpuState]] = {}
        self._signature_of: dict[GpuState, tuple] = {}
        self._mig_changed: set[GpuState] = set()
        # Nodes whose GPUs, CPU or memory changed since the last `touched.clear()`: what a carried
        # state (`carried.py`) builds again before the next plan.
        self.touched: set[str] = set()
        for node in sorted(snapshot.nodes, key=lambda n: n.name):
            self.nodes[node.name] = self._node_state(node)
        holding = holders(snapshot)
        for job in holding:
            self.hold(job.id, job.allocation)  # type: ignore[arg-type]
        self.preempted: set[str] = set()  # stopping jobs (status Preempted in the snapshot)
        self.preemptible_running: dict[str, list[Job]] = {}
        self.index_holders(holding)

    # ---------------------------------------------------------------------------------------- build

    def follow(self, snapshot: Snapshot, jobs: dict[str, Job] | None = None) -> None:
        """Read the snapshot's jobs (`jobs`: the caller's index of them by id, when it has one) and
        the projects' deserved quota. What the nodes hold is the caller's to bring along: the
        constructor holds it all, a carried state what changed."""
        self.snapshot = snapshot
        self.jobs: dict[str, Job] = jobs if jobs is not None else {job.id: job for job in snapshot.jobs}
        self.deserved: dict[str, Fraction] = {
            p.name: Fraction(p.deserved_gpus).limit_denominator(10**6) for p in snapshot.projects
        }

    def index_holders(self, holding: list[Job]) -> None:
        """Stopping jobs, and the running preemptible jobs by project: the only possible victims
        (jobs bound by this plan are not running yet; Preempted ones are already stopping).
        `holding`: the snapshot's `holders`."""
        self.preempted = set()
        self.preemptible_running = {}
        for job in holding:
            if job.status is JobStatus.PREEMPTED:
                self.preempted.add(job.id)
            elif job.type.preemptible:
                self.preemptible_running.setdefault(job.project, []).append(job)

    def _node_state(self, node: Node) -> NodeState:
        gpus = {g.index: self._gpu_state(node.name, g) for g in sorted(node.gpus, key=lambda g: g.index)}
        self._mig_changed.update(gpus.values())
        state = NodeState(node.name, node.schedulable, node.cpu_milli, node.memory_mib, gpus)
        # Instances whose `job` names no job we know are used by something else: never touch them.
        for gpu in node.gpus:
            for inst in gpu.mig_instances:
                if inst.job and inst.job not in self.jobs:
                    found = gpus[gpu.index].instance_at(inst.start)
                    if found is not None:
                        found.foreign = True
        return state

    def replace_node(self, name: str, node: Node) -> None:
        """Build the node `name` again from `node`, holding nothing: the caller holds its jobs
        again. Its old GPUs leave the MIG layout groups; it keeps its place among the nodes."""
        for gpu in self.nodes[name].gpus.values():
            self._mig_changed.discard(gpu)
            signature = self._signature_of.pop(gpu, None)
            if signature is not None:
                self._groups[signature].remove(gpu)
                if not self._groups[signature]:
                    del self._groups[signature]
        self.nodes[name] = self._node_state(node)

    @staticmethod
    def _gpu_state(node: str, gpu: Gpu) -> GpuState:
        model = lookup_model(gpu.model)
        mig_capable = model is not None and model.mig_capable
        state = GpuState(
            node=node, index=gpu.index, uuid=gpu.uuid, model_name=model.name if model else gpu.model,
            memory_mib=gpu.memory_mib, model=model, mig_only=gpu.dynamic_mig or gpu.mig_enabled,
            dynamic=gpu.dynamic_mig and mig_capable, static_mig=gpu.mig_enabled and not gpu.dynamic_mig and mig_capable,
        )
        for inst in sorted(gpu.mig_instances, key=lambda i: i.start):
            state.instances.append(Instance(_profile_for(model, inst.profile, inst.size), inst.start, inst.uuid))
        return state

    # ------------------------------------------------------------------------------------ queries

    def gpu(self, node: str, index: int) -> GpuState | None:
        holder = self.nodes.get(node)
        return None if holder is None else holder.gpus.get(index)

    def all_gpus(self) -> Iterator[GpuState]:
        for node in self.nodes.values():
            yield from node.gpus.values()

    def charge_of(self, allocation: Allocation) -> Fraction:
        """GPUs an allocation counts against its project's quota."""
        if allocation.kind == AllocationKind.MIG:
            gpu = self.gpu(allocation.node, allocation.gpu_indices[0]) if allocation.gpu_indices else None
            return mig_charge(gpu.model if gpu else None, allocation.mig_profile, allocation.share_milli)
        return Fraction(allocation.share_milli * len(allocation.gpu_indices), MILLI)

    def deserved_of(self, project: str) -> Fraction:
        return self.deserved.get(project, Fraction(0))

    def usage_of(self, project: str) -> Fraction:
        return self.usage.get(project, Fraction(0))

    def over_quota(self, project: str) -> bool:
        return self.usage_of(project) > self.deserved_of(project)

    # ------------------------------------------------------------------------------------ changes

    def hold(self, job_id: str, allocation: Allocation) -> None:
        job = self.jobs[job_id]
        self.touched.add(allocation.node)
        node = self.nodes.get(allocation.node)
        if node is not None:
            if node.cpu_free is not None:
                node.cpu_free -= job.cpu_milli
            if node.memory_free is not None:
                node.memory_free -= job.memory_mib
            for index in allocation.gpu_indices:
                gpu = node.gpus.get(index)
                if gpu is not None:
                    self._hold_gpu(gpu, job_id, allocation)
        charge = self.charge_of(allocation)
        self.allocations[job_id] = allocation
        self.charges[job_id] = charge
        self.usage[job.project] = self.usage_of(job.project) + charge
        if not job.type.preemptible:
            self.firm_usage[job.project] = self.firm_usage.get(job.project, Fraction(0)) + charge

    def _hold_gpu(self, gpu: GpuState, job_id: str, allocation: Allocation) -> None:
        gpu.version += 1
        if allocation.kind == AllocationKind.MIG:
            self._mig_changed.add(gpu)
            inst = gpu.instance_at(allocation.mig_start) if allocation.mig_start is not None else None
            if inst is None:  # being created: the backend has not reported it yet
                profile = _profile_for(gpu.model, allocation.mig_profile or "", allocation.mig_size)
                inst = Instance(profile, allocation.mig_start or 0, allocation.mig_uuid)
                gpu.instances.append(inst)
                gpu.instances.sort(key=lambda i: i.start)
            inst.job = job_id
            return
        share = allocation.share_milli if allocation.kind == AllocationKind.FRACTION else MILLI
        gpu.free_milli -= share
        gpu.holders[job_id] = share
        if allocation.kind == AllocationKind.FRACTION:
            gpu.fraction_holders += 1

    def release(self, job_id: str) -> Allocation:
        """The job stops holding its allocation (its MIG instance stays, idle)."""
        allocation = self.allocations.pop(job_id)
        charge = self.charges.pop(job_id)
        job = self.jobs[job_id]
        self.usage[job.project] -= charge
        if not job.type.preemptible:
            self.firm_usage[job.project] -= charge
        self.touched.add(allocation.node)
        node = self.nodes.get(allocation.node)
        if node is None:
            return allocation
        if node.cpu_free is not None:
            node.cpu_free += job.cpu_milli
        if node.memory_free is not None:
            node.memory_free += job.memory_mib
        for index in allocation.gpu_indices:
            gpu = node.gpus.get(index)
            if gpu is None:
                continue
            gpu.version += 1
            if allocation.kind == AllocationKind.MIG:
                self._mig_changed.add(gpu)
                for inst in gpu.instances:
                    if inst.job == job_id:
                        inst.job = None
            elif job_id in gpu.holders:
                gpu.free_milli += gpu.holders.pop(job_id)
                if allocation.kind == AllocationKind.FRACTION:
                    gpu.fraction_holders -= 1
        return allocation

    def create(self, gpu: GpuState, profile: MigProfile, start: int) -> Instance:
        inst = Instance(profile, start)
        gpu.instances.append(inst)
        gpu.instances.sort(key=lambda i: i.start)
        gpu.version += 1
        self._mig_changed.add(gpu)
        self.touched.add(gpu.node)
        return inst

    def destroy(self, gpu: GpuState, inst: Instance) -> None:
        gpu.instances.remove(inst)
        gpu.version += 1
        self._mig_changed.add(gpu)
        self.touched.add(gpu.node)

    def mig_groups(self) -> dict[tuple, list[GpuState]]:
        """MIG GPUs (dynamic, or static ones whose instances may be used) grouped by layout
        signature, each group in (node, index) order: GPUs with the same signature offer the same
        MIG choices, so each group is evaluated once."""
        for gpu in self._mig_changed:
            if not gpu.mig_usable:
                continue
            old = self._signature_of.get(gpu)
            new = gpu.signature()
            if old == new:
                continue
            if old is not None:
                self._groups[old].remove(gpu)
                if not self._groups[old]:
                    del self._groups[old]
            insort(self._groups.setdefault(new, []), gpu, key=lambda g: (g.node, g.index))
            self._signature_of[gpu] = new
        self._mig_changed.clear()
        return self._groups
