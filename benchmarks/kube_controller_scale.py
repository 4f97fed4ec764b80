"""The Kubernetes controller at scale, on the HTTP API emulator: 1,000 nodes x 8 GPUs and 10,000
running pods (fractions, whole GPUs, MIG) by default.

    .venv/bin/python benchmarks/kube_controller_scale.py [--nodes 1000] [--pods 10000] [--events 3] [--json]

The emulator runs in a child process (so that its CPU is not the controller's), filled in-process
with the state a controller that placed every pod would have left: Jobs and their Running pods,
the Allocation objects, reservation pods that reported their GPU for the shared GPUs, and on every
tenth node (dynamic MIG, A100 40GB) seven `1g.5gb` partitions on half its GPUs, with the agent's
inventory and layouts. Other nodes have two GPUs shared by four 0.25 fractions each and three whole
GPUs. The controller in this process reads through the watch-fed cache (as `runai-lite controller`
does) and holds the Lease; it talks to the emulator as a cluster administrator (RBAC is checked by
the RBAC tests, and would only slow the emulator here).

Printed: time to the first pass (from start, lists and watches included), CPU and wall of a pass
per event (a pending pod added, a node updated; the median of `--events`), of an idle pass, the API
requests of each, the settling passes after the first, the peak RSS of this process (the
controller's; its Deployment's memory limit is 512Mi) and the body size of a full list per kind.
CPU is this process's (every thread: the informers decode the watch streams).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import resource
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from runai_lite.backends.kube import conventions as k  # noqa: E402
from runai_lite.backends.kube import render_manifests  # noqa: E402
from runai_lite.backends.kube import allocations  # noqa: E402
from runai_lite.backends.kube.manifests import job_manifest, reservation_pod  # noqa: E402
from runai_lite.gpu.requests import request_from_flags  # noqa: E402
from runai_lite.model import Allocation, JobSpec  # noqa: E402

IMAGE = "runai-lite:bench"
GPUS = 8
PROJECTS = 10
MIG_EVERY = 10  # every tenth node is a dynamic-MIG node
MIG_PROFILE, MIG_SLICES, MIG_MEMORY = "1g.5gb", 7, 4864
BOUND_AT = "2026-12-01T00:00:00Z"

# --------------------------------------------------------------------------------------------
# The cluster (in the emulator's process)


def node_name(i: int) -> str:
    return f"node-{i:04d}"


def pods_of_node(i: int) -> list[tuple[str, Any]]:
    """(flags, allocation) of the running pods the node holds, in the order they are taken."""
    node = node_name(i)
    if i % MIG_EVERY == 0:
        return [({"mig_profile": MIG_PROFILE},
                 Allocation(kind="mig", node=node, gpu_indices=(g,), gpu_uuids=(f"GPU-{node}-{g}",),
                            memory_mib=MIG_MEMORY, mig_profile=MIG_PROFILE, mig_start=s, mig_size=1,
                            mig_uuid=f"MIG-{node}-{g}-{s}"))
                for g in range(GPUS // 2) for s in range(MIG_SLICES)]
    shared = [({"gpu": "0.25"}, Allocation(kind="fraction", node=node, gpu_indices=(g,), gpu_uuids=(f"GPU-{node}-{g}",),
                                           share_milli=250, memory_mib=40960 // 4))
              for g in (0, 1) for _ in range(4)]
    whole = [({"gpu": "1"}, Allocation(kind="gpu", node=node, gpu_indices=(g,), gpu_uuids=(f"GPU-{node}-{g}",)))
             for g in (2, 3, 4)]
    return shared + whole


def spread(nodes: int, pods: int) -> list[tuple[str, Any]]:
    """`pods` running pods taken round-robin over the nodes' slots."""
    slots = [pods_of_node(i) for i in range(nodes)]
    out: list[tuple[str, Any]] = []
    depth = 0
    while len(out) < pods and any(depth < len(s) for s in slots):
        out += [s[depth] for s in slots if depth < len(s)][:pods - len(out)]
        depth += 1
    return out


def add_node(kube: Any, i: int) -> None:
    node = node_name(i)
    labels = {k.GPU_PRODUCT_LABEL: "NVIDIA-A100-SXM4-40GB", k.GPU_MEMORY_LABEL: "40960"}
    annotations = {}
    if i % MIG_EVERY == 0:
        labels |= {k.DYNAMIC_MIG_LABEL: "true", k.MIG_ENABLED_LABEL: "true"}
        inventory = [{"index": g, "uuid": f"GPU-{node}-{g}", "name": "A100-SXM4-40GB", "memory_mib": 40960,
                      "mig_capable": True, "mig_enabled": True, "simulated": True} for g in range(GPUS)]
        desired = {g: [{"profile": MIG_PROFILE, "start": s, "required": True} for s in range(MIG_SLICES)]
                   for g in range(GPUS // 2)}
        actual = {g: [{"profile": MIG_PROFILE, "start": s, "size": 1, "uuid": f"MIG-{node}-{g}-{s}", "gi_id": s}
                      for s in range(MIG_SLICES)] for g in range(GPUS // 2)}
        annotations = {k.GPU_INVENTORY: json.dumps(inventory, sort_keys=True, separators=(",", ":")),
                       k.MIG_DESIRED: k.encode_layout(desired), k.MIG_ACTUAL: k.encode_layout(actual, errors=[], waiting=[]),
                       k.REPORTED_BY: node}
    kube.add_node(node, labels=labels, annotations=annotations,
                  capacity={k.GPU_RESOURCE: str(GPUS), "cpu": "64", "memory": "512Gi", "pods": "110"})


def add_running_job(kube: Any, n: int, flags: dict[str, str], allocation: Allocation | None) -> None:
    """A Job and its pod, as the Job controller made it and the controller placed it (or pending)."""
    project = f"p{n % PROJECTS}"
    spec = JobSpec(name=f"j{n:05d}", project=project, image="busybox", request=request_from_flags(**flags),
                   command=("sleep", "infinity"))
    manifest = job_manifest(spec)
    if allocation is not None:
        manifest["metadata"]["annotations"][k.STATUS] = "Running"
    namespace = manifest["metadata"]["namespace"]
    job = kube.create("jobs", manifest, namespace)
    template = manifest["spec"]["template"]
    pod = {"metadata": {"name": f"{spec.name}-x{n:05d}", "namespace": namespace,
                        "labels": {**template["metadata"]["labels"], "job-name": spec.name},
                        "annotations": dict(template["metadata"]["annotations"]),
                        "finalizers": ["batch.kubernetes.io/job-tracking"],
                        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": spec.name,
                                             "uid": job["metadata"]["uid"], "controller": True,
                                             "blockOwnerDeletion": True}]},
           "spec": dict(template["spec"])}
    if allocation is not None:
        pod["metadata"]["annotations"] |= {k.ALLOCATION: k.encode_allocation(allocation), k.BOUND_AT: BOUND_AT}
        if allocation.kind == "fraction":
            pod["metadata"]["labels"][k.GPU_GROUP_LABEL] = k.gpu_group(allocation.node, allocation.gpu_indices[0])
        pod["spec"]["nodeName"] = allocation.node
    created = kube.create("pods", pod, namespace)
    if allocation is None:
        return
    kube.patch_status("pods", created["metadata"]["name"], {"phase": "Running"}, namespace)
    kube.create(allocations.PLURAL + "." + allocations.GROUP,
                allocations.allocation_object(created, allocation, BOUND_AT), namespace)


def populate(kube: Any, nodes: int, pods: int) -> None:
    from runai_lite.backends.kube.node_agent import OPERATOR_NAMESPACE
    from tests.kube.world import RESOURCES

    kube.create_namespace(OPERATOR_NAMESPACE)  # the GPU Operator's, where the agent's Role lives
    for manifest in render_manifests(create_namespace=True):
        kube.create(RESOURCES[manifest["kind"]], manifest)
    for p in range(PROJECTS):
        kube.create_namespace(k.project_namespace(f"p{p}"), labels={k.QUEUE_LABEL: f"p{p}"})
        kube.patch("namespaces", k.project_namespace(f"p{p}"),
                   {"metadata": {"annotations": {k.DESERVED_GPUS: str(nodes * GPUS / PROJECTS)}}})
    for i in range(nodes):
        add_node(kube, i)
    shared: set[tuple[str, int]] = set()
    for n, (flags, allocation) in enumerate(spread(nodes, pods)):
        add_running_job(kube, n, flags, allocation)
        if allocation.kind == "fraction":
            shared.add((allocation.node, allocation.gpu_indices[0]))
    for node, gpu in sorted(shared):
        body = reservation_pod(node, gpu, IMAGE)
        body["metadata"]["annotations"][k.RESERVED_UUID] = f"GPU-{node}-{gpu}"
        kube.create("pods", body, k.RESERVATION_NAMESPACE)
        kube.patch_status("pods", body["metadata"]["name"], {"phase": "Running"}, k.RESERVATION_NAMESPACE)


def list_sizes(kube: Any) -> dict[str, int]:
    """Bytes of the JSON body of an unpaginated list of each kind the controller watches."""
    table = kube.store.resources
    kinds = {"pods": "pods", "nodes": "nodes", "namespaces": "namespaces", "jobs": "jobs",
             "allocations": f"{allocations.PLURAL}.{allocations.GROUP}"}
    return {name: len(json.dumps(kube.store.list(table.by_name(key), None)).encode()) for name, key in kinds.items()}


def serve(conn: Any, nodes: int, pods: int) -> None:
    """The emulator's process: fill the cluster, then answer the controller side's commands."""
    from tests.kube_emulator import KubeEmulator

    with KubeEmulator(seed=0, schema_validation=False) as kube:
        started = time.perf_counter()
        populate(kube, nodes, pods)
        conn.send({"url": kube.url, "token": kube.client_configuration().api_key["BearerToken"],
                   "populate_s": round(time.perf_counter() - started, 1), "list_bytes": list_sizes(kube),
                   "pods": len(kube.store.objects(kube.store.resources.by_name("pods")))})
        added = 0
        while True:
            command, arg = conn.recv()
            if command == "stop":
                conn.send(None)
                return
            if command == "requests":
                conn.send(len(kube.requests))
            elif command == "requests_since":
                conn.send(dict(Counter(f"{q.verb} {q.resource}" + (f"/{q.subresource}" if q.subresource else "")
                                       for q in kube.requests[arg:])))
            elif command == "add_pod":
                added += 1
                add_running_job(kube, 900_000 + added, {"gpu": "0.5"}, None)
                conn.send(("pods", k.project_namespace(f"p{(900_000 + added) % PROJECTS}"), f"j{900_000 + added:05d}-x{900_000 + added:05d}"))
            elif command == "update_node":
                node = kube.patch("nodes", node_name(arg), {"metadata": {"annotations": {"bench/touched": str(time.time())}}})
                conn.send(("nodes", None, node["metadata"]["name"], node["metadata"]["resourceVersion"]))


# --------------------------------------------------------------------------------------------
# The controller side (this process)


class Emulator:
    def __init__(self, nodes: int, pods: int):
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, nodes, pods), daemon=True)
        self.process.start()
        self.info = self.conn.recv()

    def call(self, command: str, arg: Any = None) -> Any:
        self.conn.send((command, arg))
        return self.conn.recv()

    def close(self) -> None:
        self.call("stop")
        self.process.join(10)


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def wait_seen(cache: Any, kind: str, namespace: str | None, name: str, version: str | None = None) -> None:
    """Until the cache's stream of `kind` shows the object (at `version` or newer)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        obj = cache.informers[kind].items.get((namespace, name))
        if obj is not None and (version is None or int(obj["metadata"]["resourceVersion"]) >= int(version)):
            return
        time.sleep(0.01)
    raise RuntimeError(f"the cache never showed {kind} {namespace}/{name}")


def measured_pass(controller: Any, emulator: Emulator, profile: cProfile.Profile | None = None) -> dict[str, float]:
    before = emulator.call("requests")
    cpu, wall = time.process_time(), time.perf_counter()
    if profile is not None:
        profile.enable()
    try:
        controller.reconcile_once()
    finally:
        if profile is not None:
            profile.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    # The elector renews the Lease every 2 s whatever the pass does: counted apart.
    made = emulator.call("requests_since", before)
    lease = sum(n for what, n in made.items() if what.endswith("leases.coordination.k8s.io"))
    return {"cpu_s": cpu, "wall_s": wall, "requests": sum(made.values()) - lease, "lease_requests": lease,
            "made": made}


def median(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of each figure; the requests of the median pass by CPU."""
    figures = {key: round(statistics.median(s[key] for s in samples), 3) for key in samples[0] if key != "made"}
    return figures | {"made": sorted(samples, key=lambda s: s["cpu_s"])[len(samples) // 2]["made"]}


def run(nodes: int, pods: int, events: int, profile: cProfile.Profile | None = None) -> dict[str, Any]:
    """With `profile`, the passes after an event are profiled into it."""
    from kubernetes import client as kclient

    from runai_lite.backends.heap import HeapFreezer
    from runai_lite.backends.kube.cache import WatchCache
    from runai_lite.backends.kube.client import KubeApi
    from runai_lite.backends.kube.controller import Controller
    from runai_lite.backends.kube.lease import LeaderLease

    emulator = Emulator(nodes, pods)
    stop = threading.Event()
    try:
        configuration = kclient.Configuration(host=emulator.info["url"])
        configuration.api_key = {"BearerToken": emulator.info["token"]}
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
        api = KubeApi(kclient.ApiClient(configuration))
        base_rss = peak_rss_mib()
        cpu, wall = time.process_time(), time.perf_counter()
        lease = LeaderLease(api, k.SYSTEM_NAMESPACE, k.LEASE_NAME, "bench")
        assert lease.acquire_or_renew()
        threading.Thread(target=lambda: [lease.acquire_or_renew() for _ in iter(lambda: stop.wait(2.0), True)],
                         daemon=True).start()  # the elector
        controller = Controller(api, IMAGE, lease=lease)
        cache = WatchCache(api)
        cache.start(stop)
        controller.reader = controller.writes.observer = cache
        controller.heap = HeapFreezer()  # as `runai-lite controller` does
        controller.reconcile_once()
        first = {"cpu_s": round(time.process_time() - cpu, 3), "wall_s": round(time.perf_counter() - wall, 3)}
        settle = [measured_pass(controller, emulator) for _ in range(2)]
        idle = median([measured_pass(controller, emulator) for _ in range(events)])
        added, updated = [], []
        for n in range(events):
            kind, namespace, name = emulator.call("add_pod")
            wait_seen(cache, kind, namespace, name)
            added.append(measured_pass(controller, emulator, profile))
            controller.reconcile_once()  # what the pass wrote comes back through the watches
            kind, namespace, name, version = emulator.call("update_node", (n * 7 + 1) % nodes)
            wait_seen(cache, kind, namespace, name, version)
            updated.append(measured_pass(controller, emulator, profile))
        return {"nodes": nodes, "gpus": nodes * GPUS, "pods": emulator.info["pods"],
                "populate_s": emulator.info["populate_s"], "first_pass": first,
                "settle_passes": [{key: v if key == "made" else round(v, 3) for key, v in s.items()} for s in settle],
                "idle_pass": idle, "pod_added_pass": median(added), "node_updated_pass": median(updated),
                "peak_rss_mib": round(peak_rss_mib(), 1), "rss_before_start_mib": round(base_rss, 1),
                "list_bytes": emulator.info["list_bytes"]}
    finally:
        stop.set()
        emulator.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=10_000, help="running pods of ours (reservation pods come on top)")
    parser.add_argument("--events", type=int, default=3, help="passes measured per kind of event (the median is shown)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the passes after an event to FILE (read it with pstats or snakeviz)")
    args = parser.parse_args()
    if args.nodes < 1 or args.pods < 0 or args.events < 1:
        parser.error("--nodes and --events must be at least 1, --pods at least 0")
    profile = cProfile.Profile() if args.profile else None
    result = run(args.nodes, args.pods, args.events, profile)
    if profile is not None:
        profile.dump_stats(args.profile)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['nodes']} nodes, {result['gpus']} GPUs, {result['pods']} pods "
          f"(filled in {result['populate_s']} s)")
    print(f"first pass (from start)  cpu {result['first_pass']['cpu_s']:8.3f} s  wall {result['first_pass']['wall_s']:8.3f} s")
    for i, s in enumerate(result["settle_passes"], 1):
        print(f"settling pass {i}          cpu {s['cpu_s']:8.3f} s  wall {s['wall_s']:8.3f} s  {s['requests']:5.0f} requests"
              f" (+{s['lease_requests']:.0f} Lease)")
    for label, key in (("idle pass", "idle_pass"), ("pass after a pod added", "pod_added_pass"),
                       ("pass after a node update", "node_updated_pass")):
        s = result[key]
        print(f"{label:24s} cpu {s['cpu_s']:8.3f} s  wall {s['wall_s']:8.3f} s  {s['requests']:5.0f} requests"
              f" (+{s['lease_requests']:.0f} Lease)  " + ", ".join(f"{n} {what}" for what, n in sorted(s["made"].items())))
    print(f"peak RSS {result['peak_rss_mib']:.0f} MiB (limit 512 MiB; {result['rss_before_start_mib']:.0f} MiB before start)")
    print("list bodies: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in result["list_bytes"].items()))


if __name__ == "__main__":
    main()
