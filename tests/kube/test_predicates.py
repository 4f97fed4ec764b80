"""kube-scheduler's filters as pure functions: each table row is a pod and a node, and the filters
the node fails (kube-scheduler's words), or none."""

from __future__ import annotations

import pytest

from runai_lite.backends.kube.predicates import (
    SELECTED_NODE,
    NodeUsage,
    Resources,
    Volumes,
    claims_to_bind,
    failed_filters,
    filter_nodes,
    node_facts,
    pending_reason,
    pod_requests,
    usage_by_node,
)

GiB = 2**30


def node(name: str = "n1", labels: dict | None = None, taints: list | None = None, cpu: str = "8",
         memory: str = "32Gi", pods: str = "110", ready: bool = True, unschedulable: bool = False,
         ephemeral: str = "100Gi") -> dict:
    spec: dict = {"taints": taints or []}
    if unschedulable:
        spec["unschedulable"] = True
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": ephemeral},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def pod(name: str = "p", requests: dict | None = None, init: list[dict] | None = None, ports: list | None = None,
        claims: tuple[str, ...] = (), **spec) -> dict:
    container: dict = {"name": "c", "image": "x", "resources": {"requests": requests or {}}}
    if ports:
        container["ports"] = ports
    body = {"metadata": {"name": name, "namespace": "ns"},
            "spec": {"containers": [container], **spec}}
    if init:
        body["spec"]["initContainers"] = [{"name": f"i{n}", "image": "x", "resources": {"requests": r}, **extra}
                                          for n, (r, extra) in enumerate((i.pop("requests"), i) for i in init)]
    if claims:
        body["spec"]["volumes"] = [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]
    return body


def affinity(*terms: list[dict]) -> dict:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(t)} for t in terms]}}}


def expr(key: str, operator: str, *values: str) -> dict:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


ZONE = "topology.kubernetes.io/zone"


@pytest.mark.parametrize("the_pod, the_node, expected", [
    (pod(), node(), []),
    (pod(), node(unschedulable=True), ["node(s) were unschedulable"]),
    (pod(), node(ready=False), ["node(s) were not ready"]),
    (pod(nodeSelector={ZONE: "a"}), node(labels={ZONE: "a"}), []),
    (pod(nodeSelector={ZONE: "a"}), node(labels={ZONE: "b"}), ["node(s) didn't match nodeSelector"]),
    (pod(affinity=affinity([expr(ZONE, "In", "a", "b")])), node(labels={ZONE: "b"}), []),
    (pod(affinity=affinity([expr(ZONE, "NotIn", "a")])), node(labels={ZONE: "a"}),
     ["node(s) didn't match Pod's node affinity"]),
    (pod(affinity=affinity([expr(ZONE, "NotIn", "a")])), node(), []),
    (pod(affinity=affinity([expr("gpu", "Exists")])), node(), ["node(s) didn't match Pod's node affinity"]),
    (pod(affinity=affinity([expr("gpu", "DoesNotExist")])), node(labels={"gpu": ""}),
     ["node(s) didn't match Pod's node affinity"]),
    (pod(affinity=affinity([expr("cores", "Gt", "32")])), node(labels={"cores": "64"}), []),
    (pod(affinity=affinity([expr("cores", "Lt", "32")])), node(labels={"cores": "64"}),
     ["node(s) didn't match Pod's node affinity"]),
    (pod(affinity=affinity([expr("cores", "Gt", "32")])), node(labels={"cores": "many"}),
     ["node(s) didn't match Pod's node affinity"]),
    # terms are ORed, expressions within a term ANDed
    (pod(affinity=affinity([expr(ZONE, "In", "x")], [expr(ZONE, "In", "a"), expr("gpu", "Exists")])),
     node(labels={ZONE: "a", "gpu": "1"}), []),
    (pod(), node(taints=[{"key": "dedicated", "value": "team-a", "effect": "NoExecute"}]),
     ["node(s) had untolerated taint {dedicated: team-a}"]),
    (pod(), node(taints=[{"key": "dedicated", "effect": "PreferNoSchedule"}]), []),
    (pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "team-a", "effect": "NoSchedule"}]),
     node(taints=[{"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}]), []),
    (pod(tolerations=[{"key": "dedicated", "operator": "Equal", "value": "team-b"}]),
     node(taints=[{"key": "dedicated", "value": "team-a", "effect": "NoSchedule"}]),
     ["node(s) had untolerated taint {dedicated: team-a}"]),
    (pod(tolerations=[{"operator": "Exists"}]), node(taints=[{"key": "any", "effect": "NoExecute"}]), []),
    (pod(tolerations=[{"key": "any", "operator": "Exists", "effect": "NoSchedule"}]),
     node(taints=[{"key": "any", "effect": "NoExecute"}]), ["node(s) had untolerated taint {any: }"]),
    (pod(requests={"cpu": "64", "memory": "512Gi"}), node(cpu="4", memory="16Gi"),
     ["Insufficient cpu", "Insufficient memory"]),
    (pod(requests={"cpu": "500m", "ephemeral-storage": "200Gi"}), node(), ["Insufficient ephemeral-storage"]),
    (pod(), node(pods="0"), ["Too many pods"]),
])
def test_the_filters_a_node_fails(the_pod, the_node, expected):
    assert failed_filters(the_pod, the_node, None) == expected


def test_resources_count_what_every_bound_unfinished_pod_takes_whoever_scheduled_it():
    others = [
        {**pod("a", {"cpu": "3"}), "spec": {**pod("a", {"cpu": "3"})["spec"], "nodeName": "n1",
                                             "schedulerName": "default-scheduler"}},
        {**pod("b", {"cpu": "3"}), "spec": {**pod("b", {"cpu": "3"})["spec"], "nodeName": "n1"},
         "status": {"phase": "Succeeded"}},  # finished: holds nothing
        pod("c", {"cpu": "1"}),  # not placed anywhere
    ]
    usage = usage_by_node(others, placed={"ns/c": "n1"})  # c was claimed for n1, not bound yet
    assert usage["n1"].requested == Resources(cpu_milli=4000, pods=2)
    assert failed_filters(pod(requests={"cpu": "4"}), node(cpu="8"), usage["n1"]) == []
    assert failed_filters(pod(requests={"cpu": "4100m"}), node(cpu="8"), usage["n1"]) == ["Insufficient cpu"]


def test_init_containers_count_by_the_larger_of_their_peak_and_the_main_containers():
    assert pod_requests(pod(requests={"cpu": "1"}, init=[{"requests": {"cpu": "3"}}, {"requests": {"cpu": "2"}}])) \
        == Resources(cpu_milli=3000, pods=1)
    # a sidecar (restartPolicy: Always) runs beside the later init containers and the main ones
    assert pod_requests(pod(requests={"cpu": "1"}, init=[{"requests": {"cpu": "1"}, "restartPolicy": "Always"},
                                                         {"requests": {"cpu": "2"}}])) \
        == Resources(cpu_milli=3000, pods=1)
    limits_only = {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "resources": {"limits": {"memory": "1Gi"}}}]}}
    assert pod_requests(limits_only).memory == GiB


def test_host_ports_conflict_on_the_same_protocol_and_port():
    used = NodeUsage()
    used.add(pod("web", ports=[{"containerPort": 80, "hostPort": 8080}]))
    wants = pod(ports=[{"containerPort": 80, "hostPort": 8080}])
    assert failed_filters(wants, node(), used) == ["node(s) didn't have free ports for the requested pod ports"]
    udp = pod(ports=[{"containerPort": 80, "hostPort": 8080, "protocol": "UDP"}])
    assert failed_filters(udp, node(), used) == []


def claim(name: str, storage_class: str = "local", volume: str | None = None, selected: str | None = None) -> dict:
    meta: dict = {"name": name, "namespace": "ns", "annotations": {SELECTED_NODE: selected} if selected else {}}
    return {"metadata": meta, "spec": {"storageClassName": storage_class, **({"volumeName": volume} if volume else {})}}


CLASSES = {"local": {"metadata": {"name": "local"}, "volumeBindingMode": "WaitForFirstConsumer"},
           "fast": {"metadata": {"name": "fast"}, "volumeBindingMode": "Immediate"}}


def test_a_bound_claim_keeps_the_pod_to_its_volumes_nodes():
    volume = {"metadata": {"name": "pv1"}, "spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
        {"matchExpressions": [expr("kubernetes.io/hostname", "In", "n2")]}]}}}}
    volumes = Volumes(claims={("ns", "data"): claim("data", volume="pv1")}, volumes={"pv1": volume}, classes=CLASSES)
    nodes = [node("n1", labels={"kubernetes.io/hostname": "n1"}), node("n2", labels={"kubernetes.io/hostname": "n2"})]
    filtered = filter_nodes(pod(claims=("data",)), node_facts(nodes, {}), volumes)
    assert filtered.eligible == ("n2",)
    assert filtered.excluded == (("node(s) had volume node affinity conflict", 1),)


def test_a_wait_for_first_consumer_claim_is_bound_where_the_pod_goes():
    volumes = Volumes(claims={("ns", "scratch"): claim("scratch")}, classes=CLASSES)
    filtered = filter_nodes(pod(claims=("scratch",)), node_facts([node("n1"), node("n2")], {}), volumes)
    assert filtered.eligible == ("n1", "n2")
    assert [c["metadata"]["name"] for c in claims_to_bind(pod(claims=("scratch",)), "n2", volumes)] == ["scratch"]
    chosen = Volumes(claims={("ns", "scratch"): claim("scratch", selected="n2")}, classes=CLASSES)
    assert filter_nodes(pod(claims=("scratch",)), node_facts([node("n1"), node("n2")], {}), chosen).eligible == ("n2",)
    assert claims_to_bind(pod(claims=("scratch",)), "n2", chosen) == []


@pytest.mark.parametrize("claims, why", [
    ({("ns", "data"): claim("data", storage_class="fast")}, "pod has unbound immediate PersistentVolumeClaims"),
    ({}, 'persistentvolumeclaim "data" not found'),
])
def test_a_claim_no_node_can_satisfy_keeps_the_pod_waiting(claims, why):
    volumes = Volumes(claims=claims, classes=CLASSES)
    filtered = filter_nodes(pod(claims=("data",)), node_facts([node("n1")], {}), volumes)
    assert filtered.eligible == () and filtered.summary == f"0/1 nodes are available: {why}."


def test_the_why_pending_names_every_filter_that_failed():
    nodes = [node("n1", labels={ZONE: "b"}), node("n2", labels={ZONE: "b"}), node("n3", labels={ZONE: "a"}, cpu="2")]
    huge = pod(requests={"cpu": "4"}, nodeSelector={ZONE: "a"})
    filtered = filter_nodes(huge, node_facts(nodes, {}))
    assert filtered.summary == "0/3 nodes are available: 2 node(s) didn't match nodeSelector, 1 Insufficient cpu."
    assert pending_reason("no node passes the job's node filters", filtered) == filtered.summary
    some = filter_nodes(pod(nodeSelector={ZONE: "b"}), node_facts(nodes, {}))
    assert pending_reason("no GPU has 0.5 free", some) == \
        "no GPU has 0.5 free; node filters left out 1 of 3 nodes: 1 node(s) didn't match nodeSelector"
    assert pending_reason("no GPU has 0.5 free", filter_nodes(pod(), node_facts(nodes, {}))) == "no GPU has 0.5 free"
