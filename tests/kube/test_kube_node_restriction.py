"""NodeRestriction for the node agents (the install's `runai-lite-node-reports` and
`runai-lite-agent-pod-deletions` admission policies, keyed on the node its pod's token names): an
agent changes only its own node's reports, nobody else writes them, and the controller ignores a
report that does not name its node."""

from __future__ import annotations

import json

import pytest

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.cluster import ClusterObjects, build_view
from runai_lite.backends.kube.install import CONTROLLER
from runai_lite.backends.kube.node_agent import OPERATOR_NAMESPACE
from runai_lite.backends.kube.rest import ApiError, core
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobStatus

from .world import World


@pytest.fixture
def world(kube_emulator, tmp_path) -> World:
    world = World(kube_emulator, tmp_path)
    world.add_mig_node("gpu-a")
    world.add_mig_node("gpu-b", "A100-SXM4-40GB:2")
    world.backend.create_project("team-a", 2)
    return world


def refused(call) -> str:
    with pytest.raises(ApiError) as caught:
        call()
    assert caught.value.status == 403, caught.value
    return str(caught.value)


def forged_inventory(world: World, node: str) -> dict[str, str]:
    """Node `node`'s reports claiming eight GPUs it does not have."""
    gpus = json.loads(world.kube.get("nodes", node)["metadata"]["annotations"][k.GPU_INVENTORY])
    return {k.GPU_INVENTORY: json.dumps(gpus * 8)}


def test_an_agent_may_not_write_another_nodes_reports(world: World):
    agent_b = world.agent_api("gpu-b")
    before = world.kube.get("nodes", "gpu-a")["metadata"]["annotations"]
    for annotations in (forged_inventory(world, "gpu-a"), {k.REPORTED_BY: "gpu-a"}, {k.MIG_DESIRED: "{}"}):
        message = refused(lambda a=annotations: agent_b.merge_patch(core("nodes", name="gpu-a"),
                                                                     {"metadata": {"annotations": a}}))
        assert "runai-lite-node-reports" in message and "only the node its pod runs on" in message
    assert world.kube.get("nodes", "gpu-a")["metadata"]["annotations"] == before


def test_an_agent_changes_only_its_reports_on_its_own_node(world: World):
    agent_a = world.agent_api("gpu-a")
    node = core("nodes", name="gpu-a")
    for patch in ({"metadata": {"labels": {k.DYNAMIC_MIG_LABEL: "true"}}},  # a role only administrators give
                  {"metadata": {"annotations": {k.MIG_DESIRED: "{}"}}},  # the controller's
                  {"spec": {"unschedulable": True}}):
        assert "only its node's runai-lite reports" in refused(lambda p=patch: agent_a.merge_patch(node, p))
    assert "must name the node" in refused(lambda: agent_a.merge_patch(
        node, {"metadata": {"annotations": {k.REPORTED_BY: "gpu-b"}}}))
    # its reports and the MIG manager's state label it may write
    agent_a.merge_patch(node, {"metadata": {"annotations": {k.REPORTED_BY: "gpu-a"},
                                            "labels": {k.MIG_CONFIG_STATE_LABEL: "success"}}})


def test_no_one_but_the_nodes_agent_writes_its_reports(world: World):
    controller = KubeApi(world.kube.api_client(service_account=f"{k.SYSTEM_NAMESPACE}/{CONTROLLER}"))
    message = refused(lambda: controller.merge_patch(core("nodes", name="gpu-a"),
                                                     {"metadata": {"annotations": forged_inventory(world, "gpu-a")}}))
    assert "written by that node's agent only" in message
    # the controller still writes what is its own: the desired layout
    controller.merge_patch(core("nodes", name="gpu-a"), {"metadata": {"annotations": {k.MIG_DESIRED: "{}"}}})


def test_an_agent_restarts_pods_on_its_own_node_only(world: World):
    other = world.kube.objects("pods", OPERATOR_NAMESPACE, label_selector="app=nvidia-device-plugin-daemonset")
    on_b = next(p for p in other if p["spec"]["nodeName"] == "gpu-b")
    agent_a = world.agent_api("gpu-a")
    assert "only pods on its own node" in refused(
        lambda: agent_a.delete(core("pods", OPERATOR_NAMESPACE, on_b["metadata"]["name"])))
    assert world.kube.get("pods", on_b["metadata"]["name"], OPERATOR_NAMESPACE) is not None


def test_a_forged_report_is_ignored_by_the_controller_until_the_nodes_agent_reports_again(world: World):
    world.backend.set_dynamic_mig("gpu-a", True)
    # what another node's agent could have written before the policy was installed
    world.kube.patch("nodes", "gpu-a", {"metadata": {"annotations": {**forged_inventory(world, "gpu-a"),
                                                                     k.REPORTED_BY: "gpu-b"}}})
    node = world.kube.get("nodes", "gpu-a")
    view = build_view(ClusterObjects(nodes=[node], namespaces=[], pods=[], jobs=[]))
    assert view.snapshot.nodes[0].gpus == ()  # neither the forged GPUs nor any other: no report of its own

    world.controller.reconcile_once()
    world.backend.submit(JobSpec(name="mig", project="team-a", image="img",
                                 request=request_from_flags(mig_profile="1g.10gb"), node_type=None))
    world.kube.job_controller.sync()
    world.controller.reconcile_once()
    [job] = world.backend.list_jobs("team-a")
    assert job.status == JobStatus.PENDING

    world.settle()  # the node's own agent reports again: its one GPU, signed with its name
    [job] = world.backend.list_jobs("team-a")
    assert job.status == JobStatus.RUNNING and job.allocation.node == "gpu-a"
    assert len(json.loads(world.kube.get("nodes", "gpu-a")["metadata"]["annotations"][k.GPU_INVENTORY])) == 1
