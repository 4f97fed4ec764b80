"""The rendered RBAC is enough: every API request the controller, the node agent and the
reservation pods make during the quickstart, a fraction job and a preemption is allowed by the
roles `runai-adm install --print` gives their ServiceAccounts (each acts as its ServiceAccount, so
the emulator refuses what the roles and admission policies do not allow, and this test checks
every request against the roles as well)."""

from __future__ import annotations

import re
from typing import Any

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube import render_manifests
from runai_lite.backends.kube.client import KubeApi
from runai_lite.backends.kube.cache import WATCHES
from runai_lite.backends.kube.controller import Controller
from runai_lite.backends.kube.install import AGENT, CONTROLLER, RESERVATION
from runai_lite.backends.kube.node_agent import NodeAgent
from runai_lite.gpu.requests import request_from_flags
from runai_lite.model import JobSpec, JobType

from .world import IMAGE, World

PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)(?:/namespaces/(?P<ns>[^/]+))?/(?P<resource>[^/]+)"
                  r"(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$")
VERBS = {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}


class RecordingApi(KubeApi):
    """The product's client, noting (verb, group, resource, namespace) of every request."""

    def __init__(self, api_client: Any):
        super().__init__(api_client)
        self.seen: set[tuple[str, str, str, str | None]] = set()

    def _call(self, method, path, query=None, body=None, content_type=None, timeout=None, **named):
        match = PATH.match(path)
        assert match, path
        resource = match["resource"] + (f"/{match['sub']}" if match["sub"] else "")
        if method == "GET":
            verb = "watch" if (query or {}).get("watch") else "get" if match["name"] else "list"
        else:
            verb = VERBS[method]
        self.seen.add((verb, match["group"] or "", resource, match["ns"]))
        return super()._call(method, path, query, body, content_type, timeout, **named)


def allowed(account: str, account_namespace: str, project_bindings: list[dict] = ()) -> list[tuple[str | None, dict]]:
    """(namespace the rule applies in, or None for cluster-wide; rule) for a ServiceAccount: what the
    install grants, and the RoleBindings `runai-adm project create` made in project namespaces."""
    manifests = render_manifests()
    roles = {(m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m for m in manifests
             if m["kind"] in ("Role", "ClusterRole")}
    granted = []
    bindings = [m for m in manifests if m["kind"] in ("RoleBinding", "ClusterRoleBinding")] + list(project_bindings)
    for binding in bindings:
        if {"kind": "ServiceAccount", "name": account, "namespace": account_namespace} not in binding["subjects"]:
            continue
        scope = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        granted += [(scope, rule) for rule in role["rules"]]
    return granted


def permits(granted: list[tuple[str | None, dict]], verb: str, group: str, resource: str, namespace: str | None
            ) -> bool:
    return any((scope is None or scope == namespace) and group in rule["apiGroups"]
               and resource in rule["resources"] and verb in rule["verbs"] for scope, rule in granted)


def unauthorised(api: RecordingApi, account: str, project_bindings: list[dict] = ()) -> list:
    granted = allowed(account, k.SYSTEM_NAMESPACE if account != RESERVATION else k.RESERVATION_NAMESPACE,
                      project_bindings)
    return sorted(request for request in api.seen if not permits(granted, *request))


def test_every_request_of_the_quickstart_and_a_fraction_job_is_allowed(kube_emulator, tmp_path):
    world = World(kube_emulator, tmp_path)
    # each as its own ServiceAccount: the emulator enforces the rendered RBAC and admission policies too
    controller_api = RecordingApi(kube_emulator.api_client(service_account=f"{k.SYSTEM_NAMESPACE}/{CONTROLLER}"))
    agent_api = RecordingApi(kube_emulator.api_client(service_account=f"{k.SYSTEM_NAMESPACE}/{AGENT}",
                                                      node="gpu-node-1"))
    world.reservation_api = RecordingApi(kube_emulator.api_client(
        service_account=f"{k.RESERVATION_NAMESPACE}/{RESERVATION}"))
    world.controller = Controller(controller_api, IMAGE)
    world.add_mig_node("gpu-node-1")
    world.agents["gpu-node-1"] = NodeAgent(agent_api, "gpu-node-1", world.drivers["gpu-node-1"])
    world.add_gpu_node("t4-node", 1)
    world.backend.create_project("team-a", 2)
    world.backend.set_dynamic_mig("gpu-node-1", True)
    for name, flags, kind in (("mig1", {"gpu_memory": "10GB"}, JobType.TRAIN),
                              ("mig2", {"mig_profile": "2g.10gb"}, JobType.TRAIN),
                              ("mig3", {"mig_profile": "2g.10gb"}, JobType.TRAIN),
                              ("frac", {"gpu": "0.5"}, JobType.TRAIN)):
        world.backend.submit(JobSpec(name=name, project="team-a", image="img", type=kind,
                                     request=request_from_flags(**flags)))
    world.settle()
    world.backend.submit(JobSpec(name="mig1-int", project="team-a", image="img", type=JobType.INTERACTIVE,
                                 request=request_from_flags(gpu_memory="20G")))
    world.settle()
    world.backend.delete_jobs("team-a", ["frac"])
    world.settle()  # its reservation pod goes

    verbs = {verb for verb, *_ in controller_api.seen}
    assert {"create", "patch", "delete", "list"} <= verbs  # the scenario exercised the controller
    assert ("create", "", "pods/eviction", "runai-team-a") in controller_api.seen
    assert ("delete", "", "pods", k.RESERVATION_NAMESPACE) in controller_api.seen
    # device ConfigMaps only where the project's RoleBinding grants them
    assert ("create", "", "configmaps", "runai-team-a") in controller_api.seen
    assert unauthorised(controller_api, CONTROLLER) == [("create", "", "configmaps", "runai-team-a")]
    project_bindings = world.kube.objects("rolebindings", "runai-team-a")
    assert [b["roleRef"]["name"] for b in project_bindings] == ["runai-lite-device-configmaps"]
    assert unauthorised(controller_api, CONTROLLER, project_bindings) == []
    assert unauthorised(agent_api, AGENT) == []
    assert world.reservation_api.seen and unauthorised(world.reservation_api, RESERVATION) == []


def test_the_controller_may_watch_what_it_watches_and_hold_its_lease():
    granted = allowed(CONTROLLER, k.SYSTEM_NAMESPACE)
    for path, _ in WATCHES:
        match = PATH.match(path)
        for verb in ("list", "watch"):
            assert permits(granted, verb, match["group"] or "", match["resource"], match["ns"]), (verb, path)
    for verb in ("get", "create", "update"):
        assert permits(granted, verb, "coordination.k8s.io", "leases", k.SYSTEM_NAMESPACE)
    assert not permits(granted, "update", "coordination.k8s.io", "leases", "kube-system")
    agent = allowed(AGENT, k.SYSTEM_NAMESPACE)
    assert permits(agent, "watch", "", "nodes", None) and not permits(agent, "patch", "", "pods", None)
