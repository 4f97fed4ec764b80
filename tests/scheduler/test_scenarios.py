"""Table-driven scheduler scenarios (KAI-Scheduler style): nodes, GPUs and jobs in, a plan out.

Each case reads as a story; `expect` lists every action of its kinds (as `describe` writes them)
and `pending` a phrase each job left pending must be told.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from runai_lite.model import JobStatus, Snapshot
from runai_lite.scheduler import apply_plan, plan
from runai_lite.scheduler.invariants import check_plan, check_snapshot
from tests.scheduler.builders import (
    a100,
    cluster,
    describe,
    gpu,
    job,
    node,
    on_gpus,
    on_mig,
    on_share,
    running,
)


@dataclass
class Scenario:
    story: str
    snapshot: Snapshot
    expect: dict[str, list[str]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)


A100_NODE = node("node-1", a100())
QUICKSTART_QUOTA = {"team-a": 2}
mig1 = job("mig1", gpu_memory="10GB", at=1)
mig2 = job("mig2", mig_profile="2g.10gb", at=2)
mig3 = job("mig3", mig_profile="2g.10gb", at=3)
QUICKSTART_RUNNING = [
    running(mig1, on_mig("node-1", 0, "1g.10gb", 6), started=10),
    running(mig2, on_mig("node-1", 0, "2g.10gb", 4), started=11),
    running(mig3, on_mig("node-1", 0, "2g.10gb", 0), started=12),
]

SCENARIOS = [
    Scenario(
        "quickstart, step 1: one job asks for 10GB, two for a 2g.10gb; three 10GB partitions are created and bound "
        "(10GB is served by the smallest fitting profile, 1g.10gb, at the highest start)",
        cluster([A100_NODE], [mig1, mig2, mig3], QUICKSTART_QUOTA),
        expect={"create": ["node-1/0 1g.10gb@6", "node-1/0 2g.10gb@0", "node-1/0 2g.10gb@4"],
                "bind": ["mig1 node-1/0 1g.10gb@6", "mig2 node-1/0 2g.10gb@4", "mig3 node-1/0 2g.10gb@0"],
                "preempt": [], "destroy": []},
    ),
    Scenario(
        "quickstart, step 2: an interactive job asks for 20G; exactly one training job is preempted, only its "
        "partition is destroyed, a 3g.20gb is created and the interactive job is bound",
        cluster([A100_NODE], [*QUICKSTART_RUNNING, job("mig1-int", type="interactive", gpu_memory="20G", at=20)],
                QUICKSTART_QUOTA),
        expect={"preempt": ["mig3"], "destroy": ["node-1/0 2g.10gb@0"], "create": ["node-1/0 3g.20gb@0"],
                "bind": ["mig1-int node-1/0 3g.20gb@0"]},
    ),
    Scenario(
        "quickstart with --mig-profile: three 2g.10gb at 0, 2, 4; a 3g.20gb fits at 4 after one victim (at 0 it "
        "would take two)",
        cluster([A100_NODE], [running(job(f"t{s}", mig_profile="2g.10gb"), on_mig("node-1", 0, "2g.10gb", s))
                              for s in (0, 2, 4)] + [job("int", type="interactive", mig_profile="3g.20gb", at=5)]),
        expect={"preempt": ["t4"], "destroy": ["node-1/0 2g.10gb@4"], "create": ["node-1/0 3g.20gb@4"],
                "bind": ["int node-1/0 3g.20gb@4"]},
    ),
    Scenario(
        "lazy deallocation: an idle 2g.10gb left by a finished job is reused as it is",
        cluster([node("node-1", a100(idle=(("2g.10gb", 2),)))], [job("j", mig_profile="2g.10gb")]),
        expect={"create": [], "destroy": [], "bind": ["j node-1/0 2g.10gb@2"]},
    ),
    Scenario(
        "a GPU with MIG set up by an administrator (not dynamic): its idle instances are used, none is created, "
        "and it takes no fractions",
        cluster([node("node-1", gpu(0, "A100-SXM4-40GB", mig=False, idle=(("2g.10gb", 0), ("3g.20gb", 4))).model_copy(
            update={"mig_enabled": True})), node("node-2", gpu(0))],
                [job("two", mig_profile="2g.10gb", at=1), job("one", mig_profile="1g.5gb", at=2),
                 job("half", gpu="0.5", at=3)]),
        expect={"create": [], "destroy": [], "bind": ["half node-2/0 0.5", "two node-1/0 2g.10gb@0"]},
        pending={"one": "no idle 1g.5gb instance on the MIG GPUs here, and they are not dynamic-MIG"},
    ),
    Scenario(
        "idle partitions in the way are destroyed before anyone is preempted",
        cluster([node("node-1", a100(idle=(("2g.10gb", 0), ("1g.5gb", 2))))],
                [running(job("t", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 4)),
                 job("big", type="interactive", mig_profile="4g.20gb")]),
        expect={"preempt": [], "destroy": ["node-1/0 1g.5gb@2", "node-1/0 2g.10gb@0"],
                "create": ["node-1/0 4g.20gb@0"], "bind": ["big node-1/0 4g.20gb@0"]},
    ),
    Scenario(
        "a victim's partition of the very profile needed is taken over, not destroyed and recreated",
        cluster([A100_NODE], [running(job("t", mig_profile="7g.40gb"), on_mig("node-1", 0, "7g.40gb", 0)),
                              job("int", type="interactive", mig_profile="7g.40gb")]),
        expect={"preempt": ["t"], "destroy": [], "create": [], "bind": ["int node-1/0 7g.40gb@0"]},
    ),
    Scenario(
        "among single victims the lowest priority goes: the training job, not the interactive-preemptible one",
        cluster([A100_NODE], [running(job("ip", type="preemptible", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 0)),
                              running(job("tr", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 4)),
                              job("int", type="interactive", mig_profile="3g.20gb")]),
        expect={"preempt": ["tr"], "bind": ["int node-1/0 3g.20gb@4"]},
    ),
    Scenario(
        "among equal victims the most recently started goes",
        cluster([A100_NODE], [running(job("old", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 0), started=1),
                              running(job("new", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 4), started=9),
                              job("int", type="interactive", mig_profile="3g.20gb")]),
        expect={"preempt": ["new"], "bind": ["int node-1/0 3g.20gb@4"]},
    ),
    Scenario(
        "fewest victims wins over lower priority: one interactive-preemptible rather than two training jobs",
        cluster([A100_NODE], [running(job("ip", type="preemptible", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 4)),
                              running(job("a", mig_profile="2g.10gb"), on_mig("node-1", 0, "2g.10gb", 0)),
                              running(job("b", mig_profile="2g.10gb"), on_mig("node-1", 0, "2g.10gb", 2)),
                              job("int", type="interactive", mig_profile="3g.20gb")], {"team-a": 3}),
        expect={"preempt": ["ip"], "bind": ["int node-1/0 3g.20gb@4"]},
    ),
    Scenario(
        "interactive jobs are never preempted: a second one waits",
        cluster([A100_NODE], [running(job("i1", type="interactive", mig_profile="7g.40gb"), on_mig("node-1", 0, "7g.40gb", 0)),
                              job("i2", type="interactive", mig_profile="1g.5gb")]),
        expect={"preempt": [], "bind": []},
        pending={"i2": "no dynamic-MIG GPU has room for a 1g.5gb"},
    ),
    Scenario(
        "equal priority never preempts: a training job waits for a training job of its own project",
        cluster([node("node-1", gpu(0))], [running(job("t1", gpu="1"), on_gpus("node-1", 0)), job("t2", gpu="1", at=1)]),
        expect={"preempt": [], "bind": []},
        pending={"t2": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "fractions pack: 0.5, 0.5, 0.25 and 0.75 fill two GPUs exactly",
        cluster([node("node-1", gpu(0), gpu(1))],
                [job("h1", gpu="0.5", at=1), job("h2", gpu="0.5", at=2), job("q", gpu="0.25", at=3),
                 job("tq", gpu="0.75", at=4)]),
        expect={"bind": ["h1 node-1/0 0.5", "h2 node-1/0 0.5", "q node-1/1 0.25", "tq node-1/1 0.75"],
                "reserve": ["node-1/0", "node-1/1"]},
    ),
    Scenario(
        "a fraction that fits no single GPU stays pending even though the total free share is enough",
        cluster([node("node-1", gpu(0), gpu(1))],
                [running(job("a", gpu="0.5"), on_share("node-1", 0, 0.5)),
                 running(job("b", gpu="0.5"), on_share("node-1", 1, 0.5)), job("big", gpu="0.75", at=1)]),
        expect={"bind": [], "reserve": []},
        pending={"big": "no GPU has 0.75 free (largest free share: 0.5 on node-1 GPU 0)"},
    ),
    Scenario(
        "--gpu-memory on an ordinary GPU is a share of its memory (8GB of a 16GB V100 ≈ 0.49)",
        cluster([node("node-1", gpu(0))], [job("m", gpu_memory="8GB")]),
        expect={"bind": ["m node-1/0 0.473"], "reserve": ["node-1/0"]},
    ),
    Scenario(
        "a GPU model the catalog does not know is shared by the memory the snapshot reports",
        cluster([node("node-1", gpu(0, "G3", memory_mib=32000))], [job("m", gpu_memory="16000Mi")]),
        expect={"bind": ["m node-1/0 0.5"]},
    ),
    Scenario(
        "the interactive job must fit its project's deserved quota",
        cluster([node("node-1", gpu(0), gpu(1), gpu(2))],
                [running(job("i1", type="interactive", gpu="1"), on_gpus("node-1", 0)),
                 job("i2", type="interactive", gpu="1", at=1)], {"team-a": 1}),
        expect={"bind": []},
        pending={"i2": "project team-a would exceed its deserved 1 GPU"},
    ),
    Scenario(
        "a MIG instance counts compute slices / 7 against the quota: 3g.20gb (0.43) fits 0.5, a further 1g.5gb not",
        cluster([A100_NODE], [running(job("i1", type="interactive", mig_profile="3g.20gb"), on_mig("node-1", 0, "3g.20gb", 0)),
                              job("i2", type="interactive", mig_profile="1g.5gb", at=1)], {"team-a": 0.5}),
        expect={"bind": [], "create": []},
        pending={"i2": "project team-a would exceed its deserved 0.5 GPUs (interactive jobs hold 0.43, this one "
                       "needs 0.14)"},
    ),
    Scenario(
        "exact quota arithmetic: 0.1 + 0.2 fits a quota of 0.3",
        cluster([node("node-1", gpu(0))], [running(job("a", type="interactive", gpu="0.1"), on_share("node-1", 0, 0.1)),
                                           job("b", type="interactive", gpu="0.2", at=1)], {"team-a": 0.3}),
        expect={"bind": ["b node-1/0 0.2"]},
    ),
    Scenario(
        "training runs above quota on spare GPUs",
        cluster([node("node-1", gpu(0), gpu(1), gpu(2))], [job("t1", gpu="2"), job("t2", gpu="1", at=1)],
                {"team-a": 1}),
        expect={"bind": ["t1 node-1/0,1", "t2 node-1/2"], "preempt": []},
    ),
    Scenario(
        "reclaim: a project below its quota takes back a GPU from a project running over its quota "
        "(the most recently started over-quota job goes)",
        cluster([node("node-1", gpu(0), gpu(1))],
                [running(job("a1", gpu="1"), on_gpus("node-1", 0), started=1),
                 running(job("a2", gpu="1"), on_gpus("node-1", 1), started=2),
                 job("b1", project="team-b", gpu="1", at=3)], {"team-a": 1, "team-b": 1}),
        expect={"preempt": ["a2"], "bind": ["b1 node-1/1"]},
    ),
    Scenario(
        "over-quota work goes first: an interactive job takes the GPU of another project's over-quota training "
        "rather than its own project's in-quota training",
        cluster([node("node-1", gpu(0), gpu(1))],
                [running(job("a1", gpu="1"), on_gpus("node-1", 0), started=5),
                 running(job("b1", project="team-b", gpu="1"), on_gpus("node-1", 1), started=1),
                 job("i", type="interactive", gpu="1", at=9)], {"team-a": 2, "team-b": 0}),
        expect={"preempt": ["b1"], "bind": ["i node-1/1"]},
    ),
    Scenario(
        "no reclaim of in-quota work: a project within its quota keeps its GPUs",
        cluster([node("node-1", gpu(0), gpu(1))],
                [running(job("a1", gpu="1"), on_gpus("node-1", 0)), running(job("a2", gpu="1"), on_gpus("node-1", 1)),
                 job("b1", project="team-b", gpu="1", at=3)], {"team-a": 2, "team-b": 1}),
        expect={"preempt": [], "bind": []},
        pending={"b1": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "a project at its quota does not reclaim",
        cluster([node("node-1", gpu(0), gpu(1), gpu(2))],
                [running(job("a1", gpu="1"), on_gpus("node-1", 0)), running(job("a2", gpu="1"), on_gpus("node-1", 1)),
                 running(job("b1", project="team-b", gpu="1"), on_gpus("node-1", 2)),
                 job("b2", project="team-b", gpu="1", at=3)], {"team-a": 1, "team-b": 1}),
        expect={"preempt": [], "bind": []},
        pending={"b2": "project team-b uses its 1 GPU deserved, so it waits for spare GPUs"},
    ),
    Scenario(
        "higher priority first: the interactive job submitted later gets the only free GPU",
        cluster([node("node-1", gpu(0))], [job("t", gpu="1", at=1), job("i", type="interactive", gpu="1", at=2)]),
        expect={"bind": ["i node-1/0"]},
        pending={"t": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "the most deprived project first: team-b (0 of 1 used) before team-a (1 of 1) although submitted later",
        cluster([node("node-1", gpu(0), gpu(1))],
                [running(job("a0", gpu="1"), on_gpus("node-1", 0)), job("a1", gpu="1", at=1),
                 job("b1", project="team-b", gpu="1", at=2)], {"team-a": 1, "team-b": 1}),
        expect={"bind": ["b1 node-1/1"]},
        pending={"a1": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "in-quota work first: another project's in-quota training goes before over-quota work, even of higher "
        "priority (which would only be reclaimed next cycle)",
        cluster([node("node-1", gpu(0))], [job("extra", type="preemptible", gpu="0.25", at=1),
                                           job("owed", project="team-b", gpu="1", at=2)], {"team-a": 0, "team-b": 1}),
        expect={"bind": ["owed node-1/0"], "preempt": []},
        pending={"extra": "project team-a uses its 0 GPUs deserved"},
    ),
    Scenario(
        "then submission time within a project",
        cluster([node("node-1", gpu(0))], [job("late", gpu="1", at=5), job("early", gpu="1", at=1)]),
        expect={"bind": ["early node-1/0"]},
        pending={"late": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "multi-GPU jobs get whole GPUs on one node",
        cluster([node("node-1", gpu(0), gpu(1)), node("node-2", gpu(0), gpu(1))],
                [running(job("x", gpu="0.5"), on_share("node-1", 0, 0.5)), job("two", gpu="2")]),
        expect={"bind": ["two node-2/0,1"]},
    ),
    Scenario(
        "multi-GPU jobs never span nodes: one free GPU on each of two nodes is not enough",
        cluster([node("node-1", gpu(0), gpu(1)), node("node-2", gpu(0), gpu(1))],
                [running(job("x", gpu="1"), on_gpus("node-1", 0)), running(job("y", gpu="1"), on_gpus("node-2", 1)),
                 job("two", gpu="2", at=1)], {"team-a": 4}),
        expect={"bind": []},
        pending={"two": "no node has 2 free whole GPUs (most on one node: 1 free on node-1)"},
    ),
    Scenario(
        "mixing: --gpu-memory prefers a MIG partition on a dynamic-MIG GPU, --gpu a fraction of an ordinary GPU",
        cluster([node("mig-node", a100()), node("v100-node", gpu(0))],
                [job("mem", gpu_memory="10GB", at=1), job("frac", gpu="0.5", at=2),
                 job("prof", mig_profile="3g.20gb", at=3)]),
        expect={"bind": ["frac v100-node/0 0.5", "mem mig-node/0 1g.10gb@6", "prof mig-node/0 3g.20gb@0"]},
    ),
    Scenario(
        "mixing: when the MIG GPU is fully used, --gpu-memory falls back to a fraction rather than preempting",
        cluster([node("mig-node", a100()), node("v100-node", gpu(0))],
                [running(job("full", mig_profile="7g.40gb"), on_mig("mig-node", 0, "7g.40gb", 0)),
                 job("mem", type="interactive", gpu_memory="4GB", at=1)]),
        expect={"bind": ["mem v100-node/0 0.237"], "preempt": []},
    ),
    Scenario(
        "mixing: --mig-profile is served only by MIG, and dynamic-MIG GPUs serve nothing else",
        cluster([node("v100-node", gpu(0)), node("mig-node", a100())],
                [job("prof", mig_profile="1g.5gb", at=1), job("whole", gpu="1", at=2), job("whole2", gpu="1", at=3)]),
        expect={"bind": ["prof mig-node/0 1g.5gb@0", "whole v100-node/0"]},
        pending={"whole2": "no node has 1 free whole GPU"},
    ),
    Scenario(
        "--mig-profile on a cluster without dynamic-MIG GPUs says how to get one",
        cluster([node("node-1", gpu(0))], [job("prof", mig_profile="1g.5gb")]),
        pending={"prof": "no dynamic-MIG GPU in the cluster"},
    ),
    Scenario(
        "--mig-profile that the GPUs here do not offer lists the profiles they do",
        cluster([node("node-1", gpu(0, "A30", mig=True))], [job("prof", mig_profile="3g.20gb")]),
        pending={"prof": "no dynamic-MIG GPU offers MIG profile 3g.20gb (models here: A30; their profiles: 1g.6gb"},
    ),
    Scenario(
        "memory no GPU can hold",
        cluster([node("node-1", gpu(0)), node("node-2", a100())], [job("huge", gpu_memory="60GB")]),
        pending={"huge": "no GPU can hold 60GB (largest GPU memory: 39.59GiB)"},
    ),
    Scenario(
        "a preempted job that is still stopping is waited for, not joined by a second victim",
        cluster([A100_NODE],
                [running(mig1, on_mig("node-1", 0, "1g.10gb", 6)), running(mig2, on_mig("node-1", 0, "2g.10gb", 4)),
                 running(mig3, on_mig("node-1", 0, "2g.10gb", 0), status=JobStatus.PREEMPTED),
                 job("mig1-int", type="interactive", gpu_memory="20G", at=20)], QUICKSTART_QUOTA),
        expect={"preempt": [], "bind": [], "create": [], "destroy": []},
        pending={"mig1-int": "waiting for preempted job mig3 to stop"},
    ),
    Scenario(
        "the first fraction on a GPU reserves it; the next one on the same GPU does not",
        cluster([node("node-1", gpu(0))],
                [running(job("a", gpu="0.25"), on_share("node-1", 0, 0.25)), job("b", gpu="0.25", at=1)]),
        expect={"reserve": [], "bind": ["b node-1/0 0.25"]},
    ),
    Scenario(
        "a job without GPUs goes to a node with room for its CPU and memory",
        cluster([node("small", gpu(0), cpu_milli=1000), node("big", gpu(0), cpu_milli=8000)],
                [job("cpu", cpu_milli=4000)]),
        expect={"bind": ["cpu big"]},
    ),
    Scenario(
        "host CPU counts too: a free GPU on a node without the CPU the job asks for is no place for it",
        cluster([node("node-1", gpu(0), cpu_milli=2000)], [job("t", gpu="0.5", cpu_milli=4000)]),
        pending={"t": "no schedulable node has 4 CPU cores free"},
    ),
    Scenario(
        "jobs may be limited to GPU models: a T4-only job does not take the V100",
        cluster([node("node-1", gpu(0)), node("node-2", gpu(0, "T4"))],
                [job("v", gpu="1", at=1), job("t4", gpu="1", at=2, gpu_models=("Tesla T4",)),
                 job("t4b", gpu="1", at=3, gpu_models=("T4",))], {"team-a": 4}),
        expect={"bind": ["t4 node-2/0", "v node-1/0"]},
        pending={"t4b": "no node has 1 free whole GPU (most on one node: 0 free on node-2)"},
    ),
    Scenario(
        "whole GPUs on 4 dynamic-MIG A100-80GB (one busy) + 2 busy T4s: the reason counts the free MIG GPUs as "
        "`runai list nodes` does, and says how to get a whole A100 there",
        cluster([node("vm", *(gpu(i, "A100-SXM4-80GB", mig=True) for i in range(4)), gpu(4, "T4"), gpu(5, "T4"))],
                [running(job("m", mig_profile="1g.10gb"), on_mig("vm", 0, "1g.10gb", 0, "A100-SXM4-80GB")),
                 running(job("t1", gpu="1"), on_gpus("vm", 4)), running(job("t2", gpu="1"), on_gpus("vm", 5)),
                 job("two", gpu="2", at=1)], {"team-a": 8}),
        pending={"two": "no node has 2 free whole GPUs (most on one node: 0 free on vm, besides 3 free dynamic-MIG); "
                        "dynamic-MIG GPUs serve MIG requests only: for one whole A100-SXM4-80GB, ask for "
                        "--mig-profile 7g.80gb or --gpu-memory 78.75GiB"},
    ),
    Scenario(
        "--gpu 1 on a dynamic-MIG-only node suggests the MIG profile of a whole GPU",
        cluster([A100_NODE], [job("w", gpu="1")]),
        pending={"w": "no GPU here can be given whole: every one is dynamic-MIG (1 free on node-1); dynamic-MIG GPUs "
                      "serve MIG requests only: for one whole A100-SXM4-40GB, ask for --mig-profile 7g.40gb or "
                      "--gpu-memory"},
    ),
    Scenario(
        "--gpu 0.5 on a dynamic-MIG-only node suggests the --gpu-memory that gets a partition",
        cluster([A100_NODE], [job("f", gpu="0.5")]),
        pending={"f": "no GPU here can be shared in fractions: every one is dynamic-MIG; dynamic-MIG GPUs take MIG "
                      "requests, not --gpu: on A100-SXM4-40GB GPUs, --gpu-memory 19.5GiB or --mig-profile 3g.20gb"},
    ),
    Scenario(
        "unschedulable nodes get nothing new",
        cluster([node("node-1", gpu(0), schedulable=False)], [job("t", gpu="1")]),
        pending={"t": "no schedulable node"},
    ),
    Scenario(
        "an interactive-preemptible job preempts training in its project for a fraction",
        cluster([node("node-1", gpu(0))],
                [running(job("t1", gpu="0.5"), on_share("node-1", 0, 0.5)),
                 running(job("t2", gpu="0.25"), on_share("node-1", 0, 0.25), started=5),
                 running(job("t3", gpu="0.25"), on_share("node-1", 0, 0.25), started=1),
                 job("ip", type="preemptible", gpu="0.4", at=9)]),
        expect={"preempt": ["t1"], "bind": ["ip node-1/0 0.4"], "reserve": []},
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.story[:60] for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    result = plan(scenario.snapshot)
    lines = describe(result)
    for kind, expected in scenario.expect.items():
        assert sorted(lines[kind]) == sorted(expected), f"{kind}: {scenario.story}"
    for job_id, phrase in scenario.pending.items():
        reason = result.pending_reason(job_id)
        assert reason is not None and phrase in reason, f"{job_id}: {reason!r}"
    assert check_snapshot(scenario.snapshot) == []
    assert check_plan(scenario.snapshot, result) == []


def test_quickstart_end_to_end() -> None:
    """Both quickstart steps in sequence, through apply_plan: the preempted job is requeued."""
    first = cluster([A100_NODE], [mig1, mig2, mig3], QUICKSTART_QUOTA)
    after_first = apply_plan(first, plan(first), now=10)
    assert {j.id: j.status for j in after_first.jobs} == dict.fromkeys(["mig1", "mig2", "mig3"], JobStatus.RUNNING)
    assert sorted(i.profile for i in after_first.nodes[0].gpus[0].mig_instances) == ["1g.10gb", "2g.10gb", "2g.10gb"]

    second = after_first.model_copy(update={"jobs": (*after_first.jobs,
                                                     job("mig1-int", type="interactive", gpu_memory="20G", at=20))})
    step = plan(second)
    assert len(describe(step)["preempt"]) == 1
    after_second = apply_plan(second, step, now=20)
    statuses = {j.id: j.status for j in after_second.jobs}
    victim = describe(step)["preempt"][0]
    assert statuses[victim] is JobStatus.PENDING and statuses["mig1-int"] is JobStatus.RUNNING
    layout = sorted((i.start, i.profile, i.job) for i in after_second.nodes[0].gpus[0].mig_instances)
    assert ("3g.20gb", "mig1-int") in {(p, j) for _, p, j in layout}
    assert len(layout) == 3  # only the victim's partition went
    assert check_snapshot(after_second) == []
    requeued = plan(after_second)
    assert requeued.pending_reason(victim) is not None and not requeued.actions
