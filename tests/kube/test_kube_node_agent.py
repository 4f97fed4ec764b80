"""The node agent on Kubernetes: it realises the controller's desired layout through the shared
`agent.reconcile` (simulated GPU driver here), never destroys a partition a process uses, and
reports GPUs, MIG mode, partitions and errors in node annotations."""

from __future__ import annotations

import json
import os

from runai_lite.backends.kube import conventions as k

from .world import World


def annotations(world: World, node: str) -> dict[str, str]:
    return world.kube.get("nodes", node)["metadata"]["annotations"]


def desire(world: World, node: str, layout: dict[int, list[tuple[str, int]]]) -> None:
    text = k.encode_layout({i: [{"profile": p, "start": s} for p, s in items] for i, items in layout.items()})
    world.kube.patch("nodes", node, {"metadata": {"annotations": {k.MIG_DESIRED: text}}})


def test_the_agent_reports_gpus_and_mig_mode_before_any_layout(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    world.add_mig_node("n1", "A100-SXM4-40GB:1,A100-SXM4-40GB:1:mig-off")
    gpus = json.loads(annotations(world, "n1")[k.GPU_INVENTORY])
    assert [(g["index"], g["mig_capable"], g["mig_enabled"], g["simulated"]) for g in gpus] == [
        (0, True, True, True), (1, True, False, True)]
    assert gpus[0]["uuid"] != gpus[1]["uuid"] and gpus[0]["memory_mib"] > 40000
    layout, report = k.decode_layout(annotations(world, "n1")[k.MIG_ACTUAL])
    assert layout == {0: []} and report["errors"] == []


def test_the_agent_keeps_a_partition_in_use_until_its_process_is_gone(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    driver = world.add_mig_node("n1")
    agent = world.agents["n1"]
    desire(world, "n1", {0: [("3g.20gb", 0)]})
    agent.reconcile_once()
    [instance] = driver.mig_instances(0)
    layout, _ = k.decode_layout(annotations(world, "n1")[k.MIG_ACTUAL])
    assert layout[0] == [{"profile": "3g.20gb", "start": 0, "size": 4, "uuid": instance.uuid,
                          "gi_id": instance.gi_id}]

    driver.register_process(instance.uuid, os.getpid())  # a live process uses it
    desire(world, "n1", {0: [("4g.20gb", 0)]})  # needs the same slices
    agent.reconcile_once()
    assert [(i.profile, i.uuid) for i in driver.mig_instances(0)] == [("3g.20gb", instance.uuid)]
    _, report = k.decode_layout(annotations(world, "n1")[k.MIG_ACTUAL])
    assert any(str(os.getpid()) in message for message in report["waiting"])
    assert report["errors"]  # the 4g.20gb could not be made while the 3g.20gb stays

    driver.unregister_process(instance.uuid, os.getpid())
    agent.reconcile_once()
    assert [i.profile for i in driver.mig_instances(0)] == ["4g.20gb"]
    _, report = k.decode_layout(annotations(world, "n1")[k.MIG_ACTUAL])
    assert report == {"errors": [], "waiting": []}


def test_gpus_the_layout_does_not_name_are_left_alone(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    driver = world.add_mig_node("n1", "A100-SXM4-40GB:2")
    made_by_hand = driver.create_mig(1, "7g.40gb", 0)
    desire(world, "n1", {0: [("1g.5gb", 0)]})
    world.agents["n1"].reconcile_once()
    assert [i.uuid for i in driver.mig_instances(1)] == [made_by_hand.uuid]
    assert [i.profile for i in driver.mig_instances(0)] == ["1g.5gb"]


def test_the_quickstart_through_the_nvml_driver(kube_emulator, tmp_path):
    """The same agent over `NvmlDriver` (against the fake pynvml of tests/fakes): partitions are made
    with explicit placements, and the preempted job's partition is destroyed only once its process
    has stopped."""
    from runai_lite.backends.kube.node_agent import NodeAgent

    from .test_kube_cache import eventually
    from runai_lite.gpu.nvml import NvmlDriver
    from runai_lite.gpu.requests import request_from_flags
    from runai_lite.model import JobSpec, JobStatus, JobType
    from tests.fakes.fake_pynvml import FakeGpu, FakeNvml

    world = World(kube_emulator, tmp_path)
    kube_emulator.add_node("gpu-node-1", labels={k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB"})
    nvml = FakeNvml([FakeGpu.from_catalog("A100-SXM4-40GB")])
    world.agents["gpu-node-1"] = NodeAgent(world.api, "gpu-node-1", NvmlDriver(nvml=nvml))
    world.agents["gpu-node-1"].reconcile_once()
    world.backend.create_project("team-a", 2)
    world.backend.set_dynamic_mig("gpu-node-1", True)

    def submit(name: str, interactive: bool = False, **flags) -> None:
        world.backend.submit(JobSpec(name=name, project="team-a", image="cuda",
                                     type=JobType.INTERACTIVE if interactive else JobType.TRAIN,
                                     request=request_from_flags(**flags)))

    submit("mig1", gpu_memory="10GB")
    submit("mig2", mig_profile="2g.10gb")
    submit("mig3", mig_profile="2g.10gb")
    world.settle()
    running = {j.name: j.allocation.mig_uuid for j in world.backend.list_jobs("team-a")}
    assert len(set(running.values())) == 3 and len(nvml.instances(0)) == 3
    for pid, uuid in enumerate(running.values(), start=1000):
        nvml.run_process(uuid, pid)

    submit("mig1-int", interactive=True, gpu_memory="20G")
    for _ in range(3):
        world.step()
    [victim] = [n for n in running if not world.pods_of("team-a", n)[0]["spec"].get("nodeName")]
    assert len(nvml.instances(0)) == 3  # the victim's pod is gone but its process still runs: kept
    assert world.backend.get_job("team-a", "mig1-int").status is JobStatus.PENDING

    nvml.stop_processes(running[victim])
    world.settle()
    jobs = {j.name: j for j in world.backend.list_jobs("team-a")}
    assert jobs["mig1-int"].status is JobStatus.RUNNING and jobs["mig1-int"].allocation.mig_profile == "3g.20gb"
    assert jobs[victim].status is JobStatus.PENDING
    assert sorted(p for p, _, _ in nvml.instances(0)).count("MIG 3g.20gb") == 1


def test_the_running_agent_watches_its_node_instead_of_reading_it_each_pass(kube_emulator, tmp_path):
    import threading
    import time

    from runai_lite.backends.kube.node_agent import NodeAgent

    from .test_kube_cache import eventually

    world = World(kube_emulator, tmp_path)
    driver = world.add_mig_node("n1")
    agent = NodeAgent(world.api, "n1", driver)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop, 0.02), daemon=True)
    world.kube.clear_requests()
    thread.start()
    try:
        desire(world, "n1", {0: [("3g.20gb", 0)]})
        eventually(lambda: [i.profile for i in driver.mig_instances(0)] == ["3g.20gb"])
        # the annotation may still hold the pass before the create (GPU 0 empty) for a moment
        eventually(lambda: [i["profile"] for i in k.decode_layout(
            annotations(world, "n1").get(k.MIG_ACTUAL))[0].get(0, [])] == ["3g.20gb"])
        # and the MIG manager's state label follows a pass later: the last report there is to write
        eventually(lambda: (world.kube.get("nodes", "n1")["metadata"].get("labels") or {})
                   .get(k.MIG_CONFIG_STATE_LABEL) == "success")

        def patches() -> int:
            return len([r for r in world.kube.requests if r.resource == "nodes" and r.verb == "patch"])

        # Settled once no patch comes for 0.3 s (15 passes at 0.02 s); an agent that wrote on every
        # pass would never settle and fail here, on a loaded machine as on an idle one.
        seen = [-1]

        def settled() -> bool:
            before, seen[0] = seen[0], patches()
            if before != seen[0]:
                time.sleep(0.3)
                return False
            return True

        eventually(settled)
        nodes = [r for r in world.kube.requests if r.resource == "nodes"]
        assert {r.verb for r in nodes} <= {"get", "list", "watch", "patch"}
        assert len([r for r in nodes if r.verb == "get"]) <= 1  # a first pass before the first list
        assert all(r.query.get("fieldSelector") == "metadata.name=n1" for r in nodes if r.verb in ("list", "watch"))
        time.sleep(0.3)
        assert patches() == seen[0]
    finally:
        stop.set()
        thread.join(5)


def test_the_agent_reports_the_mig_managers_state_label(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    driver = world.add_mig_node("n1")
    agent = world.agents["n1"]

    def state() -> str | None:
        return (world.kube.get("nodes", "n1")["metadata"].get("labels") or {}).get(k.MIG_CONFIG_STATE_LABEL)

    assert state() is None  # no layout named yet: nothing to report
    desire(world, "n1", {0: [("3g.20gb", 0)]})
    agent.reconcile_once()
    assert state() == "success"
    [instance] = driver.mig_instances(0)
    driver.register_process(instance.uuid, os.getpid())
    desire(world, "n1", {0: [("7g.40gb", 0)]})
    agent.reconcile_once()
    assert state() == "pending"  # held back by the partition in use
    driver.unregister_process(instance.uuid, os.getpid())
    agent.reconcile_once()
    assert state() == "success" and [i.profile for i in driver.mig_instances(0)] == ["7g.40gb"]


def test_the_mig_managers_config_label_is_reported_not_obeyed(kube_emulator, tmp_path, caplog):
    """On a dynamic-MIG node the layout is the scheduler's: a `nvidia.com/mig.config` someone set
    changes nothing, and the agent says why (once per value)."""
    import logging

    world = World(kube_emulator, tmp_path)
    driver = world.add_mig_node("n1")
    agent = world.agents["n1"]
    desire(world, "n1", {0: [("3g.20gb", 0)]})
    world.kube.patch("nodes", "n1", {"metadata": {"labels": {k.MIG_CONFIG_LABEL: "all-1g.5gb"}}})
    with caplog.at_level(logging.WARNING, logger="runai_lite"):
        agent.reconcile_once()
        agent.reconcile_once()
    assert [i.profile for i in driver.mig_instances(0)] == ["3g.20gb"]  # the desired layout, not all-1g.5gb
    warned = [r.getMessage() for r in caplog.records if k.MIG_CONFIG_LABEL in r.getMessage()]
    assert len(warned) == 1 and "all-1g.5gb is not applied" in warned[0]
    assert world.kube.get("nodes", "n1")["metadata"]["labels"][k.MIG_CONFIG_STATE_LABEL] == "success"
