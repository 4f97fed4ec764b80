"""Placement policies on hand-made clusters: filters, tie-breaking, and what each policy prefers."""

from __future__ import annotations

import pytest

from runai_lite.scheduler.placement import POLICY_NAMES, Choice, Demand, FractionCluster, make_policy

PAPER_POLICIES = ("random", "dotprod", "gpu-clustering", "gpu-packing", "best-fit", "fgd")


def cluster(*nodes: tuple[str, list[int]], models=(), cpu=(), memory=()) -> FractionCluster:
    return FractionCluster([n for n, _ in nodes], [free for _, free in nodes], gpu_model=list(models),
                           cpu_free_milli=list(cpu), memory_free_mib=list(memory))


def test_every_required_policy_is_registered():
    for name in ("default", "best-fit", "packing", "spread", "random", *PAPER_POLICIES):
        assert name in POLICY_NAMES


def test_unknown_policy_names_the_known_ones():
    with pytest.raises(ValueError, match="known: .*fgd"):
        make_policy("tetris")


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_whole_gpus_need_fully_free_gpus(name):
    c = cluster(("a", [999, 999]), ("b", [1000, 0]))
    choice = make_policy(name).choose(c, Demand(gpus=1))
    assert choice == Choice(1, (0,))
    assert make_policy(name).choose(c, Demand(gpus=2)) is None


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_gpu_model_constraint_filters_nodes(name):
    c = cluster(("a", [1000]), ("b", [1000]), ("c", [1000]), models=["V100M16", "T4", "G2"])
    assert make_policy(name).choose(c, Demand(share_milli=300, gpu_models=("T4",))).node == 1
    assert make_policy(name).choose(c, Demand(gpus=1, gpu_models=("P100", "G2"))).node == 2
    assert make_policy(name).choose(c, Demand(gpus=1, gpu_models=("A100",))) is None


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_cpu_and_memory_filter_nodes(name):
    c = cluster(("a", [1000]), ("b", [1000]), ("c", [1000]), cpu=[4000, 16000, 16000], memory=[65536, 1024, 65536])
    assert make_policy(name).choose(c, Demand(gpus=1, cpu_milli=8000, memory_mib=4096)).node == 2


@pytest.mark.parametrize("name", [n for n in POLICY_NAMES if n != "random"])
def test_ties_go_to_the_smallest_node_name(name):
    c = cluster(("node-b", [1000, 1000]), ("node-c", [1000, 1000]), ("node-a", [1000, 1000]))
    assert make_policy(name).choose(c, Demand(share_milli=500)).node == 2
    assert make_policy(name).choose(c, Demand(gpus=2)).node == 2


def test_fgd_keeps_a_gpu_usable_where_best_fit_fills_the_tightest():
    # Typical work takes half a GPU. A 0.3 share on the 0.7-free GPU would leave 0.4: useless to
    # it (more fragment); on the free GPU it leaves 0.7, still usable. Best-fit takes the tight one.
    workload = [(Demand(share_milli=500), 1.0)]
    c = cluster(("a", [1000]), ("b", [700]))
    assert make_policy("fgd", workload=workload).choose(c, Demand(share_milli=300)) == Choice(0, (0,))
    assert make_policy("best-fit").choose(c, Demand(share_milli=300)) == Choice(1, (0,))


def test_fgd_picks_the_gpu_within_a_node_that_fragments_least():
    workload = [(Demand(share_milli=500), 1.0)]
    c = cluster(("a", [700, 1000, 600]))
    # 0.2 on GPU 0 leaves 0.5 (usable); on GPU 2 it leaves 0.4 (fragment); on GPU 1, 0.8.
    assert make_policy("fgd", workload=workload).choose(c, Demand(share_milli=200)) == Choice(0, (0,))


def test_fgd_places_cpu_work_where_it_strands_no_gpu():
    # Typical GPU work needs 8 CPUs; CPU-only work on node a would leave it 4 and strand its GPU.
    workload = [(Demand(gpus=1, cpu_milli=8000), 1.0)]
    c = cluster(("a", [1000]), ("b", [0]), cpu=[12000, 12000])
    assert make_policy("fgd", workload=workload).choose(c, Demand(cpu_milli=8000)).node == 1


def test_gpu_packing_prefers_shared_gpus_then_used_nodes():
    c = cluster(("a", [1000, 1000]), ("b", [1000, 500]), ("c", [1000, 0]))
    policy = make_policy("gpu-packing")
    assert policy.choose(c, Demand(share_milli=300)) == Choice(1, (1,))
    assert policy.choose(c, Demand(gpus=1)).node == 1  # a used node before the untouched one


def test_gpu_clustering_groups_jobs_of_the_same_kind():
    c = cluster(("a", [1000, 1000, 1000, 1000]), ("b", [1000, 1000, 1000, 1000]))
    c.assign(Choice(1, (0,)), Demand(share_milli=200))
    c.assign(Choice(0, (0,)), Demand(gpus=1))
    policy = make_policy("gpu-clustering")
    assert policy.choose(c, Demand(share_milli=500)).node == 1
    assert policy.choose(c, Demand(gpus=1)).node == 0


def test_dotprod_prefers_the_node_with_least_free_capacity():
    c = cluster(("a", [1000, 1000]), ("b", [1000, 0]), cpu=[64000, 64000])
    assert make_policy("dotprod").choose(c, Demand(gpus=1, cpu_milli=4000)).node == 1


def test_random_is_deterministic_per_seed_and_uniform_over_nodes():
    c = cluster(*[(f"n{i}", [1000] * (8 if i == 0 else 1)) for i in range(4)])
    picks = [make_policy("random", seed=s).choose(c, Demand(share_milli=100)).node for s in range(400)]
    assert picks == [make_policy("random", seed=s).choose(c, Demand(share_milli=100)).node for s in range(400)]
    # Node 0 has 8 GPUs but is one node: the artifact draws nodes, not GPUs, uniformly.
    assert 60 < picks.count(0) < 140


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_scores_follow_changes_to_the_cluster(name):
    c = cluster(("a", [1000]), ("b", [1000]))
    policy = make_policy(name)
    first = policy.choose(c, Demand(gpus=1))
    c.assign(first, Demand(gpus=1))
    second = policy.choose(c, Demand(gpus=1))
    assert second.node != first.node
    c.assign(second, Demand(gpus=1))
    assert policy.choose(c, Demand(gpus=1)) is None
    c.release(first, Demand(gpus=1))
    assert policy.choose(c, Demand(gpus=1)) == first


def test_gpu_memory_demands_take_a_share_that_depends_on_the_gpu():
    c = FractionCluster(["small", "big"], [[1000], [1000]], gpu_memory_mib=[16384, 81920])
    demand = Demand(gpu_memory_mib=20480)
    for name in POLICY_NAMES:
        assert make_policy(name).choose(c, demand).node == 1
    c.assign(Choice(1, (0,)), demand)
    assert c.gpu_free[1] == [750]


def test_default_keeps_untouched_nodes_whole_where_fgd_ties_go_by_name():
    # With only 1-GPU work typical, taking a GPU fragments neither node: FGD ties, and goes by name.
    workload = [(Demand(gpus=1), 1.0)]
    c = cluster(("a", [1000] * 8), ("b", [1000] * 8))
    c.assign(Choice(1, (0,)), Demand(gpus=1))
    assert make_policy("fgd", workload=workload).choose(c, Demand(gpus=1)).node == 0
    assert make_policy("default", workload=workload).choose(c, Demand(gpus=1)).node == 1


def test_default_breaks_fgd_ties_towards_gpus_that_cpu_would_strand():
    # Typical work: one GPU with 8 CPUs. Both nodes run a job on one GPU. Node n2 has CPU for two
    # such jobs beside three idle GPUs (one GPU stranded), n1 for five. FGD scores a 0.5 share
    # with 4 CPUs alike on both and goes by name (n1); the CPU-limited tie-break puts it where a
    # GPU would otherwise be stranded.
    workload = [(Demand(gpus=1, cpu_milli=8000), 1.0)]
    c = cluster(("n2", [1000] * 4), ("n1", [1000] * 4), cpu=[20000, 40000])
    for node in (0, 1):
        c.assign(Choice(node, (3,)), Demand(gpus=1))
    demand = Demand(share_milli=500, cpu_milli=4000)
    assert make_policy("fgd", workload=workload).choose(c, demand).node == 1
    assert make_policy("default", workload=workload).choose(c, demand).node == 0


def test_default_breaks_into_untouched_nodes_in_fgds_order_not_the_roomiest():
    # The same choice on untouched nodes: the CPU-limited measure would send the share to n2 here
    # too, but between untouched nodes it goes by name as FGD does, so work that must break into
    # a node lands on the same few nodes rather than on the ones with the most CPU (the only ones
    # the largest jobs fit).
    workload = [(Demand(gpus=1, cpu_milli=8000), 1.0)]
    c = cluster(("n2", [1000] * 4), ("n1", [1000] * 4), cpu=[20000, 40000])
    demand = Demand(share_milli=500, cpu_milli=4000)
    assert make_policy("default", workload=workload).choose(c, demand).node == 1


# Stories of model-confined work. Nodes: (name, GPU model, GPUs); workload: (demand, weight);
# each arrival is placed in turn; expected: per policy, the node each arrival lands on (None: fails).
G2, T4 = ("G2",), ("T4",)
CONFINED_STORIES = [
    pytest.param(
        [("g2", "G2", 1), ("t4", "T4", 1)],
        [(Demand(gpus=1), 2.0), (Demand(gpus=1, gpu_models=G2), 2.0), (Demand(gpus=1, gpu_models=T4), 1.0)],
        [Demand(gpus=1), Demand(gpus=1, gpu_models=T4)],
        {"fgd": ["t4", None], "default": ["g2", "t4"]},
        id="a T4-only job finds the T4 node because the job that could run anywhere did not take it",
    ),
    pytest.param(
        [("g2-a", "G2", 1), ("g2-b", "G2", 1), ("t4", "T4", 1)],
        [(Demand(gpus=1), 2.0), (Demand(gpus=1, gpu_models=G2), 2.0), (Demand(gpus=1, gpu_models=T4), 1.0)],
        [Demand(gpus=1), Demand(gpus=1), Demand(gpus=1, gpu_models=T4)],
        {"fgd": ["t4", "g2-a", None], "default": ["g2-a", "g2-b", "t4"]},
        id="two jobs that could run anywhere fill the G2 nodes and leave the T4 node to the T4-only job",
    ),
    pytest.param(
        [("g2", "G2", 1), ("t4", "T4", 1)],
        [(Demand(gpus=1), 2.0), (Demand(share_milli=500), 1.0)],
        [Demand(gpus=1), Demand(gpus=1)],
        {"fgd": ["g2", "t4"], "default": ["g2", "t4"]},
        id="a workload that names no model is scored as FGD scores it",
    ),
]


def placed_in_turn(c: FractionCluster, policy, arrivals: list[Demand]) -> list[str | None]:
    """Each arrival placed in turn: the node it lands on, or None where it fails."""
    landed = []
    for demand in arrivals:
        choice = policy.choose(c, demand)
        landed.append(None if choice is None else c.names[choice.node])
        if choice is not None:
            c.assign(choice, demand)
    return landed


@pytest.mark.parametrize(("nodes", "workload", "arrivals", "expected"), CONFINED_STORIES)
def test_work_that_could_run_anywhere_leaves_a_confined_jobs_model_to_it(nodes, workload, arrivals, expected):
    for name, placements in expected.items():
        c = cluster(*((n, [1000] * gpus) for n, _, gpus in nodes), models=[m for _, m, _ in nodes])
        assert placed_in_turn(c, make_policy(name, workload=workload), arrivals) == placements, name


# Stories of jobs that few nodes can host. Nodes: (name, GPUs, CPU millicores, host memory GiB);
# workload: (demand, weight); each arrival is placed in turn; expected: per policy, the node each
# arrival lands on (None: fails).
FOUR = Demand(gpus=4, cpu_milli=60200, memory_mib=313 * 1024)
EIGHT = Demand(gpus=8, cpu_milli=88000, memory_mib=320 * 1024)
EIGHT_BIG = Demand(gpus=8, cpu_milli=120000, memory_mib=720 * 1024)
FOUR_LEAN = Demand(gpus=4, cpu_milli=40000, memory_mib=300 * 1024)
SCARCE_STORIES = [
    pytest.param(
        [("big", 8, 128000, 768), ("mid-a", 8, 96000, 384), ("mid-b", 8, 96000, 384)],
        [(FOUR, 3.0), (EIGHT_BIG, 1.0), (EIGHT, 2.0)],
        [FOUR, FOUR, EIGHT_BIG],
        {"fgd": ["big", "big", None], "default": ["mid-a", "mid-b", "big"]},
        id="two 4-GPU jobs that pack the 128-CPU node exactly leave it to the 8-GPU job only it can host",
    ),
    pytest.param(
        [("a-thin", 8, 96000, 384), ("b-fat", 8, 96000, 768)],
        [(FOUR_LEAN, 2.0), (EIGHT, 1.0)],
        [FOUR_LEAN, FOUR_LEAN, EIGHT],
        {"fgd": ["a-thin", "b-fat", None], "default": ["b-fat", "b-fat", "a-thin"]},
        id="a 4-GPU job goes where the host memory lets a second one in, not where it strands 4 GPUs",
    ),
    pytest.param(
        [("big", 8, 128000, 768), ("mid-a", 8, 96000, 384), ("mid-b", 8, 96000, 384)],
        [(Demand(gpus=1, cpu_milli=8000, memory_mib=32 * 1024), 20.0), (FOUR, 2.0), (EIGHT_BIG, 1.0)],
        [FOUR, FOUR, EIGHT_BIG],
        {"fgd": ["big", "big", None], "default": ["mid-a", "mid-b", "big"]},
        id="a job too rare for FGD's typical pods (1 of 23) still keeps the one node it fits",
    ),
    pytest.param(
        [("a", 8, 128000, 768), ("b", 8, 96000, 384)],
        [(Demand(gpus=1, cpu_milli=8000, memory_mib=32 * 1024), 1.0)],
        [Demand(gpus=1, cpu_milli=8000, memory_mib=32 * 1024)] * 2,
        {"fgd": ["a", "a"], "default": ["a", "a"]},
        id="a workload every node can host is weighed as FGD weighs it",
    ),
]


@pytest.mark.parametrize(("nodes", "workload", "arrivals", "expected"), SCARCE_STORIES)
def test_default_leaves_scarce_hosts_to_the_jobs_that_need_them(nodes, workload, arrivals, expected):
    for name, placements in expected.items():
        c = cluster(*((n, [1000] * gpus) for n, gpus, _, _ in nodes), cpu=[cpu for _, _, cpu, _ in nodes],
                    memory=[gib * 1024 for *_, gib in nodes])
        assert placed_in_turn(c, make_policy(name, workload=workload), arrivals) == placements, name
