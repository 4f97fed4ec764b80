"""How long kube-scheduler's filters take in `build_view`: N nodes (tainted, labelled, partly full),
P pending pods with a nodeSelector, requests and tolerations, B bound pods; prints seconds per
`build_view` and per (pod, node) check.

    python -m benchmarks.kube_predicates [--nodes 1000] [--pending 200] [--bound 4000]
"""

from __future__ import annotations

import argparse
import time

from runai_lite.backends.kube import conventions as k
from runai_lite.backends.kube.cluster import ClusterObjects, build_view


def node(i: int) -> dict:
    return {"metadata": {"name": f"node-{i}", "labels": {"zone": f"z{i % 4}", k.GPU_PRODUCT_LABEL: "Tesla-T4"}},
            "spec": {"taints": [{"key": "team", "value": f"t{i % 3}", "effect": "NoSchedule"}]},
            "status": {"allocatable": {"cpu": "64", "memory": "256Gi", "pods": "110", k.GPU_RESOURCE: "8"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(i: int, bound_to: str | None) -> dict:
    spec = {"schedulerName": "default-scheduler" if bound_to else k.SCHEDULER_NAME,
            "nodeSelector": {"zone": f"z{i % 4}"},
            "tolerations": [{"key": "team", "operator": "Equal", "value": f"t{i % 3}"}],
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2", "memory": "8Gi"}}}]}
    if bound_to:
        spec["nodeName"] = bound_to
    return {"metadata": {"name": f"p{i}", "namespace": "runai-team", "uid": f"u{i}",
                         "annotations": {k.GPU_FRACTION: "0.5"}},
            "spec": spec, "status": {"phase": "Running" if bound_to else "Pending"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pending", type=int, default=200)
    parser.add_argument("--bound", type=int, default=4000)
    args = parser.parse_args()
    nodes = [node(i) for i in range(args.nodes)]
    pods = [pod(i, f"node-{i % args.nodes}") for i in range(args.bound)]
    pods += [pod(args.bound + i, None) for i in range(args.pending)]
    namespace = {"metadata": {"name": "runai-team", "labels": {k.QUEUE_LABEL: "team"}}}
    objects = ClusterObjects(nodes=nodes, namespaces=[namespace], pods=pods, jobs=[])
    start = time.perf_counter()
    view = build_view(objects)
    elapsed = time.perf_counter() - start
    eligible = sum(len(f.eligible) for f in view.filtered.values())
    checks = args.pending * args.nodes
    print(f"{args.nodes} nodes, {args.bound} bound pods, {args.pending} pending pods: build_view {elapsed:.3f} s "
          f"({elapsed / checks * 1e6:.1f} µs per pod-node check; {eligible / max(args.pending, 1):.0f} eligible "
          f"nodes per pod)")


if __name__ == "__main__":
    main()
