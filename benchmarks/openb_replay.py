"""The openb arrivals through the scheduler's own decision path, in ways that must agree.

- `PlanPath`: what the scheduler does. Each cycle builds a `Snapshot` (the trace's nodes, every
  job seen so far: placed ones running, failed ones finished, this cycle's arrivals pending) and
  calls `scheduler.plan`; the plan's binds become running jobs. Arrivals it cannot place fail and
  are never retried (the FGD protocol), but stay in the snapshot as finished jobs: the cluster has
  seen them. `CarriedPath` makes the same calls through one `CarriedPlanner`, as the Kubernetes
  controller does, its working state carried between cycles.
- `PolicyPath`: a thin path through exactly the inputs `plan` builds for shared-GPU work: the
  `FractionCluster` of `SharedGpus`, each job's `shared_gpus.demand_of`, the policy from
  `make_policy(snapshot.policy, workload=shared_gpus.workload_of(jobs seen))`, rebuilt only when
  that mix changes (`learning_horizon`), so score caches stay warm as they cannot across plan()
  calls. tests/placement/test_openb_replay.py checks that all three place every pod alike.

Both see a cycle's arrivals as seen when the cycle starts (they are in the snapshot's queue).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from benchmarks.openb_trace import TraceNode
from runai_lite.model import MILLI, Bind, Gpu, GpuRequest, Job, JobStatus, Node, Plan, Project, Snapshot
from runai_lite.scheduler import plan
from runai_lite.scheduler.carried import CarriedPlanner
from runai_lite.scheduler.placement import Demand, make_policy
from runai_lite.scheduler.shared_gpus import SharedGpus, demand_of, learning_horizon, workload_of
from runai_lite.scheduler.state import ClusterState

PROJECT = "openb"
GPU_MEMORY_MIB = 16384  # the trace gives no GPU memory and its requests never ask for any

Placement = tuple[str, tuple[int, ...]] | None  # node name and GPU indices, or None: failed


def trace_nodes(nodes: Sequence[TraceNode]) -> tuple[Node, ...]:
    return tuple(
        Node(name=n.name, cpu_milli=n.cpu_milli, memory_mib=n.memory_mib,
             gpus=tuple(Gpu(index=i, uuid=f"GPU-{n.name}-{i}", model=n.model, memory_mib=GPU_MEMORY_MIB)
                        for i in range(n.gpus)))
        for n in nodes)


def job_of(index: int, demand: Demand) -> Job:
    """Arrival `index` as the job a researcher would submit (submitted in arrival order)."""
    if demand.is_fraction:
        request = GpuRequest(fraction=demand.share_milli / MILLI)
    elif demand.gpus:
        request = GpuRequest(gpus=demand.gpus)
    else:
        request = None
    return Job(id=f"pod-{index:06d}", name=f"pod-{index:06d}", project=PROJECT, request=request,
               submitted_at=float(index), cpu_milli=demand.cpu_milli, memory_mib=demand.memory_mib,
               gpu_models=demand.gpu_models)


def base_snapshot(nodes: Sequence[TraceNode], policy: str) -> Snapshot:
    # One project deserving every GPU: no quota decision can differ from the protocol's.
    return Snapshot(nodes=trace_nodes(nodes), projects=(Project(name=PROJECT, deserved_gpus=sum(n.gpus for n in nodes)),),
                    policy=policy)


@dataclass
class PathResult:
    placements: list[Placement]
    decision_seconds: float  # CPU time of the decisions alone (policy calls, or plan() calls)
    cycles: int


def cycles_of(count: int, cycle: int) -> list[range]:
    return [range(start, min(start + cycle, count)) for start in range(0, count, cycle)]


class PolicyPath:
    """The policy alone, on the `FractionCluster` that `SharedGpus` builds, kept across cycles."""

    def __init__(self, nodes: Sequence[TraceNode], policy: str, seed: int = 0):
        snapshot = base_snapshot(nodes, policy)
        self.shared = SharedGpus(ClusterState(snapshot))
        self.policy_name = policy
        self.seed = seed  # for `random`, whose draws plan() (a new policy each cycle) would repeat

    def run(self, jobs: Sequence[Job], cycle: int = 1, workload: Sequence[tuple[Demand, float]] | None = None) -> PathResult:
        """`workload`, when given, replaces the learnt mix for the whole run (the demand mix of the
        whole trace, as the FGD artifact computes its typical pods: an oracle the scheduler does
        not have)."""
        cluster = self.shared.cluster
        placements: list[Placement] = []
        horizon = -1
        policy = None
        start = time.process_time()
        for batch in cycles_of(len(jobs), cycle):
            seen = batch.stop
            if workload is not None:
                policy = policy or make_policy(self.policy_name, workload=workload, seed=self.seed)
            elif learning_horizon(seen) != horizon:
                horizon = learning_horizon(seen)
                policy = make_policy(self.policy_name, workload=workload_of(jobs[:seen]), seed=self.seed)
            for i in batch:
                demand = demand_of(jobs[i])
                assert demand is not None and policy is not None
                choice = policy.choose(cluster, demand)
                if choice is None:
                    placements.append(None)
                    continue
                cluster.assign(choice, demand)
                node, gpus = self.shared.resolve(choice)
                placements.append((node.name, tuple(g.index for g in gpus)))
        return PathResult(placements, time.process_time() - start, len(cycles_of(len(jobs), cycle)))


class PlanPath:
    """`scheduler.plan` once per cycle on a snapshot of everything seen so far."""

    def __init__(self, nodes: Sequence[TraceNode], policy: str, seed: int = 0):
        self.base = base_snapshot(nodes, policy)
        self.planner: Callable[[Snapshot], Plan] = plan

    def run(self, jobs: Sequence[Job], cycle: int = 100) -> PathResult:
        seen: list[Job] = []
        placements: list[Placement] = [None] * len(jobs)
        seconds = 0.0
        batches = cycles_of(len(jobs), cycle)
        for batch in batches:
            arrivals = [jobs[i] for i in batch]
            snapshot = self.base.model_copy(update={"jobs": (*seen, *arrivals)})
            start = time.process_time()
            result = self.planner(snapshot)
            seconds += time.process_time() - start
            if any(a.action != "bind" for a in result.actions if a.action not in ("reserve",)):
                raise AssertionError(f"the replay expects binds only: {[a.action for a in result.actions][:5]}")
            binds = {b.job: b.allocation for b in result.of_type(Bind)}
            for i, job in zip(batch, arrivals):
                allocation = binds.get(job.id)
                if allocation is None:
                    seen.append(job.model_copy(update={"status": JobStatus.FAILED}))
                else:
                    seen.append(job.model_copy(update={"status": JobStatus.RUNNING, "allocation": allocation}))
                    placements[i] = (allocation.node, allocation.gpu_indices)
        return PathResult(placements, seconds, len(batches))


class CarriedPath(PlanPath):
    """The same cycles through one `CarriedPlanner` (what the Kubernetes controller runs): the
    working state is carried from one cycle to the next and only what changed is built again."""

    def __init__(self, nodes: Sequence[TraceNode], policy: str, seed: int = 0):
        super().__init__(nodes, policy, seed)
        self.planner = CarriedPlanner()


PATHS = {"policy": PolicyPath, "plan": PlanPath, "carried": CarriedPath}
