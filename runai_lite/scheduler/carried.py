"""`plan()` over a working state carried from one call to the next.

A controller plans again after every change, and at 1,000 nodes building the working state from
the snapshot (`ClusterState`, `SharedGpus`, the typical workload, the policy's score caches) was
most of a plan with one pending job. `CarriedPlanner` keeps them between calls and brings them to
the next snapshot from what differs: nodes whose model changed, whose MIG instances name jobs that
came or went, or that the last plan changed are built again with every job they hold; jobs whose
holding changed make their nodes such nodes. The rest is reused as it is, and the placement
policy keeps its per-node score caches while the typical workload stays the same.

The plan is the one `plan(snapshot)` gives: `tests/scheduler/test_carried.py` holds the carried
state equal to a fresh build, and the plans equal, over random sequences of changes. Pure like the
rest of the scheduler (no I/O, no clock): what it carries is only a cache, and any call may build
afresh instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Job, Node, Plan, Snapshot
from .engine import cycle, has_pending
from .mig_cache import MigChoices
from .placement import Demand, PlacementPolicy, demand_mix, make_policy
from .placement.policies import ScoredPolicy
from .session import Session
from .shared_gpus import SharedGpus, demand_of, learnt_from
from .state import ClusterState, holders

# Above this share of nodes to build again, a fresh build is as cheap and simpler.
REBUILD_SHARE = 0.25
# MIG choices kept across plans (per layout signature); past this many, start over.
MIG_CACHE_LIMIT = 20_000


def _holding(job: Job) -> tuple:
    """What `ClusterState.hold` reads of a job besides its allocation."""
    return job.project, job.type.preemptible, job.cpu_milli, job.memory_mib


def _claims(node: Node, jobs: dict[str, Job]) -> tuple[tuple[str, bool], ...]:
    """The jobs a node's MIG instances name, and whether each is known (unknown: a foreign user)."""
    return tuple((inst.job, inst.job in jobs) for gpu in node.gpus for inst in gpu.mig_instances if inst.job)


class CarriedPlanner:
    """Callable like `plan`, keeping the working state between calls (one per controller)."""

    def __init__(self) -> None:
        self._state: ClusterState | None = None
        self._shared: SharedGpus | None = None
        self._nodes: dict[str, Node] = {}  # the node models the state was built from
        self._claims: dict[str, tuple[tuple[str, bool], ...]] = {}
        self._demands: dict[str, tuple[Job, Demand | None]] = {}  # job id -> (job, its demand)
        self._workload_key: tuple = ()
        self._workload: list[tuple[Demand, float]] = []
        self._policy: PlacementPolicy | None = None
        self._policy_key: tuple | None = None
        self._mig = MigChoices()
        self.rebuilt_nodes = 0  # nodes built again by the last call (all of them: a fresh build)

    def __call__(self, snapshot: Snapshot) -> Plan:
        if not has_pending(snapshot):
            return Plan()  # (the state is brought up to date by the next call that plans)
        session = self.session(snapshot)
        try:
            return cycle(session)
        except BaseException:
            self._state = None  # half-way through a plan: build afresh next time
            raise

    def session(self, snapshot: Snapshot) -> Session:
        """A session over the carried state brought to `snapshot`: what `Session(snapshot)` would
        build. Planning in it changes the state; the next call builds what it changed again."""
        self._carry(snapshot)
        assert self._state is not None and self._shared is not None
        if len(self._mig) > MIG_CACHE_LIMIT:
            self._mig = MigChoices()
        return Session(snapshot, state=self._state, shared=self._shared, policy=self._policy_for(snapshot),
                       mig=self._mig)

    # -- the working state ----------------------------------------------------------------------

    def _carry(self, snapshot: Snapshot) -> None:
        nodes = {n.name: n for n in snapshot.nodes}
        jobs = {j.id: j for j in snapshot.jobs}
        state = self._state
        if state is None or len(nodes) != len(snapshot.nodes) or nodes.keys() != self._nodes.keys():
            self._fresh(snapshot, nodes, jobs)
            return
        holding = holders(snapshot)
        dirty = self._dirty(state, nodes, jobs, {job.id: job for job in holding})
        if len(dirty) > REBUILD_SHARE * len(nodes):
            self._fresh(snapshot, nodes, jobs)
            return
        for job_id, allocation in list(state.allocations.items()):
            if allocation.node in dirty:
                state.release(job_id)  # (while `state.jobs` is still the jobs it held them for)
        state.follow(snapshot, jobs)
        for name in sorted(dirty & nodes.keys()):
            state.replace_node(name, nodes[name])
        for job in holding:
            if job.allocation.node in dirty:  # type: ignore[union-attr]
                state.hold(job.id, job.allocation)  # type: ignore[arg-type]
        state.index_holders(holding)
        state.touched.clear()
        assert self._shared is not None
        if not self._shared.refresh(dirty & nodes.keys()):
            self._shared = SharedGpus(state)
        self._nodes = nodes
        for name in dirty & nodes.keys():
            self._claims.pop(name, None)
            if claims := _claims(nodes[name], jobs):
                self._claims[name] = claims
        self.rebuilt_nodes = len(dirty & nodes.keys())

    def _dirty(self, state: ClusterState, nodes: dict[str, Node], jobs: dict[str, Job],
               held: dict[str, Job]) -> set[str]:
        """Names of the nodes to build again (some may name no node: jobs held there count only
        against their quota)."""
        dirty = set(state.touched)
        for name, node in nodes.items():
            old = self._nodes[name]
            if node is not old and node != old:
                dirty.add(name)
        for name, claims in self._claims.items():
            if any((job in jobs) != known for job, known in claims):
                dirty.add(name)
        for job_id, allocation in state.allocations.items():
            new = held.get(job_id)
            if new is None:
                dirty.add(allocation.node)
                continue
            old = state.jobs[job_id]
            if new is not old and (new.allocation is not allocation and new.allocation != allocation
                                   or _holding(new) != _holding(old)):
                dirty.add(allocation.node)
                dirty.add(new.allocation.node)  # type: ignore[union-attr]
        for job_id, job in held.items():
            if job_id not in state.allocations:
                dirty.add(job.allocation.node)  # type: ignore[union-attr]
        return dirty

    def _fresh(self, snapshot: Snapshot, nodes: dict[str, Node], jobs: dict[str, Job]) -> None:
        self._state = state = ClusterState(snapshot)
        state.touched.clear()
        self._shared = SharedGpus(state)
        self._nodes = nodes
        self._claims = {name: claims for name, node in nodes.items() if (claims := _claims(node, jobs))}
        self.rebuilt_nodes = len(nodes)

    # -- the policy -----------------------------------------------------------------------------

    def _policy_for(self, snapshot: Snapshot) -> PlacementPolicy:
        """The policy `Session` would make; the same object while the typical workload stays the
        same, when its choices depend only on the cluster (its score caches then stay valid)."""
        workload = self._workload_of(snapshot.jobs)
        key = (snapshot.policy, self._workload_key)
        if self._policy is None or key != self._policy_key or not isinstance(self._policy, ScoredPolicy):
            self._policy = make_policy(snapshot.policy, workload=workload)
            self._policy_key = key
        return self._policy

    def _workload_of(self, jobs: Sequence[Job]) -> list[tuple[Demand, float]]:
        """`shared_gpus.workload_of(jobs)`, learnt again only when its input changed."""
        known, self._demands = self._demands, {}
        for job in learnt_from(jobs):
            entry = known.get(job.id)
            if entry is None or entry[0] is not job:
                entry = (job, demand_of(job))
            self._demands[job.id] = entry
        key = tuple(demand for _, demand in self._demands.values())
        if key != self._workload_key or not self._workload_key:
            self._workload = demand_mix([d for d in key if d is not None])
            self._workload_key = key
        return self._workload
