"""`CarriedPlanner` keeps the working state between plans and builds again only what changed: after
any sequence of changes (jobs submitted, bound by the last plan, finished, stopping, deleted; nodes
updated, cordoned, given another GPU, added and removed; quotas changed; partitions named by
unknown users), its state is the one a fresh build of the snapshot gives and its plan is
`plan(snapshot)` (a hypothesis property), for every placement policy."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from runai_lite.model import Bind, JobStatus, MigInstance, Project, Snapshot
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.carried import CarriedPlanner
from runai_lite.scheduler.engine import cycle
from runai_lite.scheduler.placement import POLICY_NAMES
from runai_lite.scheduler.session import Session
from runai_lite.scheduler.shared_gpus import SharedGpus
from runai_lite.scheduler.state import ClusterState
from tests.scheduler.builders import a100, cluster, gpu, job, node

PROJECTS = ("team-a", "team-b")
REQUESTS = [{"gpu": "0.5"}, {"gpu": "0.25"}, {"gpu": "1"}, {"gpu": "2"}, {"gpu_memory": "10GB"},
            {"mig_profile": "1g.5gb"}, {"mig_profile": "3g.20gb"}, {}]
NODE_NAMES = ("n0", "n1", "n2")


def nodes_of(shape: dict[str, tuple[bool, int, bool, int]]) -> list:
    """Nodes by name: (dynamic MIG, shared GPUs, schedulable, CPU cores)."""
    built = []
    for name, (mig, shared, schedulable, cores) in sorted(shape.items()):
        gpus = [a100(0)] if mig else []
        gpus += [gpu(len(gpus) + i, "V100-SXM2-16GB") for i in range(shared)]
        built.append(node(name, *gpus, cpu_milli=cores * 1000, memory_mib=64000, schedulable=schedulable))
    return built


class World:
    """A cluster that changes between plans, as a backend would report it."""

    def __init__(self, policy: str, names: tuple[str, ...] = NODE_NAMES) -> None:
        self.policy = policy
        self.shape = {name: (name == "n0", 2, True, 8) for name in names}
        self.snapshot = cluster(nodes_of(self.shape), [], {p: 1.0 for p in PROJECTS}, policy=policy)
        self.count = 0

    def submit(self, request: int, project: int, kind: str, cpu: int) -> None:
        self.count += 1
        new = job(f"j{self.count:02d}", project=PROJECTS[project], type=kind, at=float(self.count),
                  cpu_milli=cpu * 1000, memory_mib=1000, **REQUESTS[request])
        self.snapshot = self.snapshot.model_copy(update={"jobs": (*self.snapshot.jobs, new)})

    def apply(self, result) -> None:
        self.snapshot = apply_plan(self.snapshot, result, now=float(self.count))

    def finish(self, which: int) -> None:
        """A running job ends; its MIG partition stays, idle."""
        running = [j for j in self.snapshot.jobs if j.status is JobStatus.RUNNING]
        if not running:
            return
        done = running[which % len(running)]
        self._replace(done, status=JobStatus.SUCCEEDED, allocation=None)
        self._instances(lambda inst: inst.model_copy(update={"job": None}) if inst.job == done.id else inst)

    def stopping(self, which: int) -> None:
        """A running job is being preempted: it holds its allocation until it is gone."""
        running = [j for j in self.snapshot.jobs if j.status is JobStatus.RUNNING]
        if running:
            self._replace(running[which % len(running)], status=JobStatus.PREEMPTED)

    def delete(self, which: int) -> None:
        """A job disappears from the snapshot (its partition, if any, still names it)."""
        if self.snapshot.jobs:
            gone = self.snapshot.jobs[which % len(self.snapshot.jobs)]
            self.snapshot = self.snapshot.model_copy(update={"jobs": tuple(j for j in self.snapshot.jobs if j is not gone)})

    def foreign(self, start: int) -> None:
        """Something outside the scheduler uses a partition on n0 (created if missing)."""
        def mark(instances: tuple[MigInstance, ...]) -> tuple[MigInstance, ...]:
            if not any(i.start == start for i in instances):
                instances = (*instances, MigInstance(profile="1g.5gb", start=start, size=1, uuid=f"MIG-x{start}"))
            return tuple(sorted((i.model_copy(update={"job": "other/pod"}) if i.start == start and i.job is None else i
                                 for i in instances), key=lambda i: i.start))
        self._instances(mark, only="n0")

    def reshape(self, name: str, mig: bool, shared: int, schedulable: bool, cores: int) -> None:
        """A node changes (cordoned, CPU, GPUs), keeping the MIG partitions it still has a GPU for."""
        self.shape[name] = (mig, shared, schedulable, cores)
        self._rebuild_nodes()

    def add_or_remove(self, name: str) -> None:
        if name in self.shape and len(self.shape) > 1:
            del self.shape[name]
        else:
            self.shape[name] = (False, 1, True, 4)
        self._rebuild_nodes()

    def quota(self, project: int, deserved: float) -> None:
        projects = tuple(Project(name=p.name, deserved_gpus=deserved if p.name == PROJECTS[project] else p.deserved_gpus)
                         for p in self.snapshot.projects)
        self.snapshot = self.snapshot.model_copy(update={"projects": projects})

    def _replace(self, old, **update: Any) -> None:
        self.snapshot = self.snapshot.model_copy(update={"jobs": tuple(
            j.model_copy(update=update) if j is old else j for j in self.snapshot.jobs)})

    def _instances(self, change, only: str | None = None) -> None:
        nodes = []
        for n in self.snapshot.nodes:
            if only is None or n.name == only:
                gpus = []
                for g in n.gpus:
                    instances = change(g.mig_instances) if only else tuple(change(i) for i in g.mig_instances)
                    gpus.append(g.model_copy(update={"mig_instances": instances}) if g.dynamic_mig else g)
                n = n.model_copy(update={"gpus": tuple(gpus)})
            nodes.append(n)
        self.snapshot = self.snapshot.model_copy(update={"nodes": tuple(nodes)})

    def _rebuild_nodes(self) -> None:
        old = {(n.name, g.index): g for n in self.snapshot.nodes for g in n.gpus}
        nodes = []
        for n in nodes_of(self.shape):
            gpus = tuple(g.model_copy(update={"mig_instances": old[(n.name, g.index)].mig_instances})
                         if (n.name, g.index) in old and old[(n.name, g.index)].dynamic_mig and g.dynamic_mig else g
                         for g in n.gpus)
            nodes.append(n.model_copy(update={"gpus": gpus}))
        self.snapshot = self.snapshot.model_copy(update={"nodes": tuple(nodes)})


def described(state: ClusterState, shared: SharedGpus) -> dict[str, Any]:
    """Everything of a working state that planning reads, comparable."""
    nodes = []
    for name, n in state.nodes.items():
        gpus = [(i, g.uuid, g.model_name, g.memory_mib, g.mig_only, g.dynamic, g.static_mig, g.free_milli,
                 sorted(g.holders.items()), g.fraction_holders,
                 [(x.profile.name, x.start, x.uuid, x.job, x.foreign) for x in g.instances])
                for i, g in n.gpus.items()]
        nodes.append((name, n.schedulable, n.cpu_free, n.memory_free, gpus))
    cluster_ = shared.cluster
    return {
        "nodes": nodes, "jobs": list(state.jobs.items()), "deserved": state.deserved,
        "usage": {p: u for p, u in state.usage.items() if u}, "firm": {p: u for p, u in state.firm_usage.items() if u},
        "allocations": state.allocations, "charges": state.charges, "preempted": state.preempted,
        "victims": [(p, [j.id for j in jobs]) for p, jobs in state.preemptible_running.items()],
        "groups": {sig: [(g.node, g.index) for g in gpus] for sig, gpus in state.mig_groups().items()},
        "slots": [(s.node.name, [g.index for g in s.gpus]) for s in shared.slots], "slots_of": shared.slots_of,
        "free": cluster_.gpu_free, "cpu": cluster_.cpu_free, "memory": cluster_.memory_free,
        "arrays": (cluster_.free.tolist(), cluster_.cpu.tolist(), cluster_.memory.tolist(), cluster_.affinity.tolist()),
        "names": cluster_.names, "models": (cluster_.gpu_model, cluster_.gpu_memory_mib),
    }


changes = st.one_of(
    st.tuples(st.just("submit"), st.integers(0, len(REQUESTS) - 1), st.integers(0, 1),
              st.sampled_from(["train", "train", "interactive", "preemptible"]), st.integers(0, 4)),
    st.tuples(st.just("finish"), st.integers(0, 20)),
    st.tuples(st.just("stopping"), st.integers(0, 20)),
    st.tuples(st.just("delete"), st.integers(0, 20)),
    st.tuples(st.just("foreign"), st.integers(0, 6)),
    st.tuples(st.just("reshape"), st.sampled_from(NODE_NAMES), st.booleans(), st.integers(0, 3), st.booleans(),
              st.sampled_from([2, 8])),
    st.tuples(st.just("add_or_remove"), st.sampled_from((*NODE_NAMES, "n3"))),
    st.tuples(st.just("quota"), st.integers(0, 1), st.sampled_from([0.0, 0.5, 2.0])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(POLICY_NAMES),
       st.lists(st.tuples(st.lists(changes, max_size=4), st.booleans()), min_size=1, max_size=8))
@example("default", [([("submit", 0, 0, "train", 1), ("submit", 5, 1, "train", 1)], True),
                     ([("submit", 0, 0, "train", 1), ("finish", 0)], True), ([("stopping", 0)], False),
                     ([("submit", 2, 1, "interactive", 0)], True)])
def test_the_carried_state_and_plan_are_those_built_from_scratch(policy, steps):
    world = World(policy)
    planner = CarriedPlanner()
    for changes_before, applied in steps:
        for name, *args in changes_before:
            getattr(world, name)(*args)
        snapshot = world.snapshot
        session = planner.session(snapshot)
        fresh = Session(snapshot)
        assert described(session.state, session.shared) == described(fresh.state, fresh.shared)
        carried = cycle(session)
        assert carried == plan(snapshot)
        if applied:  # else the backend did not carry the plan out: the next snapshot is this one
            world.apply(carried)


def test_only_what_changed_is_built_again():
    world = World("default", names=tuple(f"n{i:02d}" for i in range(12)))
    planner = CarriedPlanner()
    for n in range(4):
        world.submit(2, n % 2, "train", 1)
    first = planner(world.snapshot)
    assert planner.rebuilt_nodes == 12  # the first plan builds everything
    world.apply(first)
    world.submit(0, 0, "train", 1)
    second = planner(world.snapshot)
    # what the last plan changed is built again (the backend may have done otherwise), nothing else
    assert planner.rebuilt_nodes == len({b.allocation.node for b in first.of_type(Bind)}) == 2
    world.reshape("n05", False, 2, False, 8)  # cordoned; the last plan is not carried out
    planner(world.snapshot)
    assert planner.rebuilt_nodes == len({b.allocation.node for b in second.of_type(Bind)} | {"n05"}) == 2
    world.add_or_remove("n12")
    planner(world.snapshot)
    assert planner.rebuilt_nodes == 13  # another node: built afresh


def test_a_snapshot_without_pending_jobs_plans_nothing_and_builds_nothing():
    planner = CarriedPlanner()
    snapshot = Snapshot(nodes=tuple(nodes_of({"n0": (True, 1, True, 8)})))
    assert planner(snapshot).actions == () and planner._state is None


def test_a_static_mig_gpu_and_a_dynamic_one_with_the_same_layout_are_told_apart():
    """MIG choices are cached per layout signature; an administrator's static layout offers only its
    instances, so an empty static GPU must not stand for an empty dynamic one (in one plan, or in
    the next one the carried cache serves)."""
    static = gpu(0, "A100-SXM4-40GB").model_copy(update={"mig_enabled": True})
    snapshot = cluster([node("a", static), node("b", a100(0))], [job("m", mig_profile="1g.5gb")])
    [bind] = plan(snapshot).of_type(Bind)
    assert bind.allocation.node == "b"
    planner = CarriedPlanner()
    only_static = snapshot.model_copy(update={"nodes": snapshot.nodes[:1]})
    assert planner(only_static).of_type(Bind) == []
    assert [b.allocation.node for b in planner(snapshot).of_type(Bind)] == ["b"]
