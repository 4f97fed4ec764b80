"""Minimal preemption: on hundreds of random small MIG scenarios, the scheduler's victims cost
exactly what a brute force over every victim set says is the least that makes room, by DESIGN.md's
rule (the fewest, then the lowest priority, then the most recently started); and, told as stories,
the tie-breaks after the cost: mig_choice destroys no more than the new layout needs, and among
equally cheap victims the preempted instance is taken over as it is rather than recarved into the
smallest profile that fits."""

from __future__ import annotations

import random
from itertools import combinations

import pytest

from runai_lite.gpu.catalog import GpuModel, default_catalog
from runai_lite.gpu.mig_layout import Placed, free_starts
from runai_lite.gpu.requests import mig_candidates
from runai_lite.model import Bind, CreateMig, DestroyMig, GpuRequest, Job, JobStatus, JobType, Preempt
from runai_lite.scheduler import plan
from runai_lite.scheduler.invariants import check_plan
from runai_lite.scheduler.mig_choice import targets
from runai_lite.scheduler.state import GpuState, Instance
from runai_lite.units import MiB
from tests.scheduler.builders import cluster, gpu, job, node, on_mig, running

MODELS = ("A100-SXM4-40GB", "A30", "H100-SXM5-80GB")
SCENARIOS = 600
TYPES = (JobType.TRAIN, JobType.TRAIN, JobType.INTERACTIVE_PREEMPTIBLE, JobType.INTERACTIVE)


def random_scenario(rng: random.Random):
    model = default_catalog().get(rng.choice(MODELS))
    layout: list[Placed] = []
    for _ in range(rng.randint(2, 9)):
        profile = rng.choice(model.profiles)
        starts = free_starts(model, layout, profile)
        if starts:
            layout.append(Placed(rng.choice(starts), profile.name))
    jobs: list[Job] = []
    idle: list[tuple[str, int]] = []
    for n, placed in enumerate(sorted(layout)):
        if rng.random() < 0.25:
            idle.append((placed.profile, placed.start))
            continue
        job = Job(id=f"r{n}", name=f"r{n}", project="team-a", type=rng.choice(TYPES),
                  request=GpuRequest(mig_profile=placed.profile), status=JobStatus.RUNNING,
                  submitted_at=n, started_at=rng.randint(0, 50),
                  allocation=on_mig("node-1", 0, placed.profile, placed.start, model.name))
        jobs.append(job)
    wanted = rng.choice([p for p in model.profiles if "+" not in p.name])
    if rng.random() < 0.5:
        request = GpuRequest(mig_profile=wanted.name)
    else:
        request = GpuRequest(memory_bytes=int(wanted.memory_mib * MiB * rng.uniform(0.6, 1.0)))
    newcomer = Job(id="new", name="new", project="team-a", request=request, submitted_at=100,
                   type=rng.choice((JobType.INTERACTIVE, JobType.INTERACTIVE_PREEMPTIBLE)))
    snapshot = cluster([node("node-1", gpu(0, model.name, mig=True, idle=tuple(idle)))], [*jobs, newcomer],
                       {"team-a": 100})
    return model, snapshot, jobs, newcomer


def design_cost(victims) -> tuple:
    """DESIGN.md's rule for choosing victims, written out independently of the scheduler: the
    fewest, then the lowest priorities (compared highest first), then the most recently started
    (compared oldest first). Every victim here is within its project's quota."""
    return (len(victims), sorted((v.priority for v in victims), reverse=True),
            sorted(-(v.started_at or 0.0) for v in victims))


def cheapest_victims(model: GpuModel, jobs: list[Job], newcomer: Job) -> tuple | None:
    """Brute force: over every set of eligible jobs whose instances, once stopped (and, like every
    idle instance, destroyable), leave room for one of the newcomer's candidate profiles, the least
    `design_cost`; None if no set does."""
    eligible = [j for j in jobs if j.type.preemptible and j.priority < newcomer.priority]
    candidates = mig_candidates(newcomer.request, model)
    for size in range(len(eligible) + 1):
        costs = []
        for stopped in combinations(eligible, size):
            fixed = [Placed(j.allocation.mig_start, j.allocation.mig_profile) for j in jobs if j not in stopped]
            if any(free_starts(model, fixed, p) for p in candidates):
                costs.append(design_cost(stopped))
        if costs:
            return min(costs)
    return None


def chosen_cost(snapshot, victims: list[str]) -> tuple:
    return design_cost([j for j in snapshot.jobs if j.id in victims])


@pytest.mark.parametrize("block", range(6))
def test_victims_are_the_brute_force_cheapest(block: int) -> None:
    rng = random.Random(block)
    for case in range(SCENARIOS // 6):
        model, snapshot, jobs, newcomer = random_scenario(rng)
        result = plan(snapshot)
        victims = [a.job for a in result.actions if isinstance(a, Preempt)]
        bound = [a.job for a in result.actions if isinstance(a, Bind)]
        cheapest = cheapest_victims(model, jobs, newcomer)
        context = f"block {block} case {case}: {snapshot.nodes[0].gpus[0].mig_instances} wanted {newcomer.request}"
        if cheapest is None:
            assert bound == [] and victims == [], context
            assert result.pending_reason("new"), context
        else:
            assert bound == ["new"], context
            assert chosen_cost(snapshot, victims) == cheapest, context
        assert check_plan(snapshot, result) == [], context


def random_cluster_scenario(rng: random.Random):
    """Two or three dynamic-MIG GPUs of one model over one or two nodes, two projects in quota,
    up to eight running jobs per GPU; the newcomer may preempt only its own project's
    lower-priority work."""
    model = default_catalog().get(rng.choice(MODELS))
    gpus_per_node = [rng.randint(1, 2) for _ in range(rng.randint(1, 2))]
    jobs: list[Job] = []
    nodes = []
    by_gpu: dict[tuple[str, int], list[Job]] = {}
    for n, count in enumerate(gpus_per_node):
        name = f"node-{n}"
        built = []
        for g in range(count):
            layout: list[Placed] = []
            for _ in range(rng.randint(3, 10)):
                profile = rng.choice(model.profiles)
                starts = free_starts(model, layout, profile)
                if starts:
                    layout.append(Placed(rng.choice(starts), profile.name))
            idle = []
            for k, placed in enumerate(sorted(layout)):
                if rng.random() < 0.15:
                    idle.append((placed.profile, placed.start))
                    continue
                job = Job(id=f"r{n}{g}{k}", name=f"r{n}{g}{k}", project=rng.choice(("team-a", "team-b")),
                          type=rng.choice(TYPES), request=GpuRequest(mig_profile=placed.profile),
                          status=JobStatus.RUNNING, submitted_at=k, started_at=rng.randint(0, 50),
                          allocation=on_mig(name, g, placed.profile, placed.start, model.name))
                jobs.append(job)
                by_gpu.setdefault((name, g), []).append(job)
            built.append(gpu(g, model.name, mig=True, idle=tuple(idle)))
        nodes.append(node(name, *built))
    # Large profiles most often: they are the ones that need several victims.
    wanted = rng.choice(sorted((p for p in model.profiles if "+" not in p.name), key=lambda p: p.memory_mib)[-3:])
    request = (GpuRequest(mig_profile=wanted.name) if rng.random() < 0.5
               else GpuRequest(memory_bytes=int(wanted.memory_mib * MiB * rng.uniform(0.6, 1.0))))
    newcomer = Job(id="new", name="new", project="team-a", request=request, submitted_at=100,
                   type=rng.choice((JobType.INTERACTIVE, JobType.INTERACTIVE_PREEMPTIBLE)))
    snapshot = cluster(nodes, [*jobs, newcomer], {"team-a": 100, "team-b": 100})
    return model, snapshot, by_gpu, newcomer


def cheapest_victims_anywhere(model: GpuModel, by_gpu: dict[tuple[str, int], list[Job]], newcomer: Job,
                              gpus: list[tuple[str, int]]) -> tuple | None:
    """The brute-force least cost over the GPUs: the newcomer runs on one of them."""
    found = []
    for where in gpus:
        jobs = by_gpu.get(where, [])
        own = [j for j in jobs if j.project == newcomer.project]
        others = [j for j in jobs if j.project != newcomer.project]
        cheapest = cheapest_victims(model, [*own, *(j.model_copy(update={"type": JobType.INTERACTIVE})
                                                    for j in others)], newcomer)
        if cheapest is not None:
            found.append(cheapest)
    return min(found, default=None)


@pytest.mark.parametrize("block", range(4))
def test_victims_are_the_cheapest_over_gpus_projects_and_up_to_eight_victims(block: int) -> None:
    rng = random.Random(1000 + block)
    largest = 0
    for case in range(60):
        model, snapshot, by_gpu, newcomer = random_cluster_scenario(rng)
        result = plan(snapshot)
        victims = [a.job for a in result.actions if isinstance(a, Preempt)]
        bound = [a.job for a in result.actions if isinstance(a, Bind)]
        gpus = [(n.name, g.index) for n in snapshot.nodes for g in n.gpus]
        cheapest = cheapest_victims_anywhere(model, by_gpu, newcomer, gpus)
        context = f"block {block} case {case}: wanted {newcomer.request}"
        if cheapest is None:
            assert bound == [] and victims == [], context
        else:
            assert bound == ["new"], context
            assert chosen_cost(snapshot, victims) == cheapest, context
            assert {j.project for j in snapshot.jobs if j.id in victims} <= {"team-a"}, context
            largest = max(largest, cheapest[0])
        assert check_plan(snapshot, result) == [], context
    assert largest >= 2  # the blocks do exercise multi-victim choices


# (story, model, instances as (profile, start, holder or None), profile wanted, start, expected
# destroys as (profile, start), or "reuse"). A `+me` profile may exist once per GPU, so its cap,
# not memory, can force destroying an instance elsewhere: only that one instance, never another
# idle one that happens to be destroyable too.
CAP_CASES = [
    ("the +me cap: the other +me goes, the idle 1g.5gb next to it stays",
     "A100-SXM4-40GB", [("1g.5gb+me", 0, None), ("1g.5gb", 1, None), *[("1g.5gb", s, "keep") for s in range(2, 6)]],
     "1g.5gb+me", 6, [("1g.5gb+me", 0)]),
    ("an idle 1g.5gb in the way and the +me cap: both go, nothing else",
     "A100-SXM4-40GB", [("1g.5gb+me", 0, None), ("1g.5gb", 1, None), ("1g.5gb", 2, None),
                        *[("1g.5gb", s, "keep") for s in range(3, 6)]],
     "1g.5gb+me", 1, [("1g.5gb+me", 0), ("1g.5gb", 1)]),
    ("the idle +me where it is: taken over, nothing destroyed",
     "A100-SXM4-40GB", [("1g.5gb+me", 0, None), ("1g.5gb", 1, None)], "1g.5gb+me", 0, "reuse"),
    ("A30, the +me cap with two idle 1g.6gb about: only the +me goes",
     "A30", [("1g.6gb+me", 0, None), ("1g.6gb", 1, None), ("1g.6gb", 2, None)], "1g.6gb+me", 3, [("1g.6gb+me", 0)]),
    ("A30 2g.12gb+me: the other 2g.12gb+me (its cap) and the idle 1g.6gb in the way go",
     "A30", [("2g.12gb+me", 0, None), ("1g.6gb", 2, None)], "2g.12gb+me", 2, [("2g.12gb+me", 0), ("1g.6gb", 2)]),
]


@pytest.mark.parametrize(("story", "model_name", "instances", "wanted", "start", "expected"), CAP_CASES,
                         ids=[c[0] for c in CAP_CASES])
def test_mig_choice_destroys_only_what_the_cap_or_the_slices_need(story, model_name, instances, wanted, start,
                                                                  expected) -> None:
    model = default_catalog().get(model_name)
    state = GpuState(node="node-1", index=0, uuid="GPU-0", model_name=model.name, memory_mib=model.memory_mib,
                     model=model, mig_only=True, dynamic=True,
                     instances=[Instance(model.profile(p), s, job=holder) for p, s, holder in instances])
    found = {t.start: t for t in targets(state, model.profile(wanted), destroy_idle=True)}
    assert start in found, story
    target = found[start]
    if expected == "reuse":
        assert target.reuse is not None and target.destroy == (), story
    else:
        assert target.reuse is None, story
        assert [(i.profile.name, i.start) for i in target.destroy] == expected, story


def _holding(name: str, kind: str, profile: str, start: int, started: float) -> Job:
    return running(job(name, type=kind, mig_profile=profile), on_mig("node-1", 0, profile, start), started=started)


# (story, running jobs as (name, type, profile, start, started_at), expected victim, profile and start
# the newcomer gets). The newcomer is interactive and asks --gpu-memory 4G: a 1g.5gb would do, but a
# victim's larger instance is taken over as it is (preempt.py: fewest victims, then their cost, then
# the MIG preferences, where not destroying comes before the smaller profile).
TAKE_OVER_CASES = [
    ("one training job on a 1g.10gb, the rest interactive: it goes and its 1g.10gb is taken over, not recarved",
     [*[(f"i{s}", "interactive", "1g.5gb", s, 1.0) for s in range(6)], ("train", "train", "1g.10gb", 6, 1.0)],
     "train", "1g.10gb", 6),
    ("two training jobs on 1g.10gb: the more recently started goes, its instance taken over as it is",
     [*[(f"i{s}", "interactive", "1g.5gb", s, 1.0) for s in range(4)],
      ("old", "train", "1g.10gb", 4, 1.0), ("fresh", "train", "1g.10gb", 6, 40.0)],
     "fresh", "1g.10gb", 6),
    ("a training job on a 1g.5gb started long ago, another on a 1g.10gb just now: the newer goes, even though "
     "the older's slot is exactly the 1g.5gb asked for",
     [*[(f"i{s}", "interactive", "1g.5gb", s, 1.0) for s in range(5)],
      ("old", "train", "1g.5gb", 5, 1.0), ("fresh", "train", "1g.10gb", 6, 40.0)],
     "fresh", "1g.10gb", 6),
]


@pytest.mark.parametrize(("story", "holders", "victim", "profile", "start"), TAKE_OVER_CASES,
                         ids=[c[0][:60] for c in TAKE_OVER_CASES])
def test_among_equally_few_victims_the_cheapest_goes_and_its_instance_is_taken_over(story, holders, victim, profile,
                                                                                   start) -> None:
    jobs = [_holding(*h) for h in holders]
    newcomer = job("new", type="interactive", gpu_memory="4G", at=100)
    snapshot = cluster([node("node-1", gpu(0, "A100-SXM4-40GB", mig=True))], [*jobs, newcomer], {"team-a": 100})
    result = plan(snapshot)
    assert [a.job for a in result.actions if isinstance(a, Preempt)] == [victim], story
    assert [a for a in result.actions if isinstance(a, DestroyMig | CreateMig)] == [], story
    [bind] = [a for a in result.actions if isinstance(a, Bind)]
    assert (bind.job, bind.allocation.mig_profile, bind.allocation.mig_start) == ("new", profile, start), story
    assert check_plan(snapshot, result) == [], story
