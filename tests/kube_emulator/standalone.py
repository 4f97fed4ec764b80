"""The emulator as a process, to try runai-lite without a cluster:

    python -m tests.kube_emulator serve --kubeconfig PATH --nodes gpu-node-1=A100-SXM4-40GB:1[,NAME=MODEL:COUNT...]

It serves on 127.0.0.1 (a free port), writes a kubeconfig (mode 0600) whose current context
(`--context`, default `emulator`) reaches it, prints `ready` on stdout once serving, and runs until
SIGTERM or SIGINT. Each node is registered as the NVIDIA device plugin and GPU feature discovery show
it (`nvidia.com/gpu: COUNT`, the `nvidia.com/gpu.product`, `gpu.memory`, `gpu.count`, `mig.capable`
labels). Every `--interval` seconds the cluster's own parts run: the Job controller and the kubelets
(admission, the device plugin, graceful termination, the taint manager), which also play runai-lite's
reservation pods. `kubectl`, `runai`, `runai-adm`, `runai-lite controller` and `runai-lite agent` then
run against it as separate processes.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterable

from .emulator import KubeEmulator
from .errors import ApiError
from .programs import play_runai_lite

log = logging.getLogger("kube_emulator")
_NODE = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?)=([A-Za-z0-9][-A-Za-z0-9 ._]*):([0-9]+)")


class NodeSpecError(ValueError):
    pass


def parse_nodes(text: str) -> list[tuple[str, Any, int]]:
    """`NAME=MODEL:COUNT[,NAME=MODEL:COUNT...]` → (name, catalog model, count); NodeSpecError says what is wrong."""
    from runai_lite.gpu.catalog import default_catalog

    catalog = default_catalog()
    nodes = []
    for part in [p.strip() for p in text.split(",") if p.strip()]:
        m = _NODE.fullmatch(part)
        if not m:
            raise NodeSpecError(f"--nodes: {part!r} is not NAME=MODEL:COUNT (e.g. gpu-node-1=A100-SXM4-40GB:1)")
        name, model_name, count = m.group(1), m.group(3), int(m.group(4))
        model = catalog.find(model_name)
        if model is None:
            raise NodeSpecError(f"--nodes: unknown GPU model {model_name!r}; known: "
                                f"{', '.join(sorted(g.name for g in catalog.models))}")
        if name in [n for n, _, _ in nodes]:
            raise NodeSpecError(f"--nodes: node {name!r} is given twice")
        nodes.append((name, model, count))
    if not nodes:
        raise NodeSpecError("--nodes: give at least one node, e.g. gpu-node-1=A100-SXM4-40GB:1")
    return nodes


def add_gpu_node(kube: KubeEmulator, name: str, model: Any, count: int) -> None:
    """A node as the NVIDIA device plugin and GPU feature discovery register it."""
    kube.add_node(name, labels={
        "nvidia.com/gpu.product": f"NVIDIA-{model.name}",
        "nvidia.com/gpu.memory": str(model.memory_mib),
        "nvidia.com/gpu.count": str(count),
        "nvidia.com/mig.capable": "true" if model.mig_capable else "false",
    }, capacity={"nvidia.com/gpu": str(count)})


def install(kube: KubeEmulator, manifests: Iterable[dict[str, Any]]) -> None:
    """Create objects given as manifests (apiVersion and kind say where each goes)."""
    table = kube.store.resources
    for manifest in manifests:
        found = [r for r in table.resources
                 if (r.api_version, r.kind) == (manifest.get("apiVersion"), manifest.get("kind"))]
        if not found:
            raise ApiError(404, f"no resource serves {manifest.get('apiVersion')} {manifest.get('kind')}")
        kube.create(found[0].key, manifest, (manifest.get("metadata") or {}).get("namespace"))


def run_cluster(kube: KubeEmulator, stop: threading.Event, interval: float) -> None:
    """The parts a cluster runs by itself, every `interval` seconds until `stop`."""
    while not stop.is_set():
        try:
            kube.job_controller.sync()
            kube.kubelet.sync()
        except Exception:  # one failed pass is logged and retried, as a controller manager would
            log.exception("cluster pass failed")
        stop.wait(interval)


def serve(kubeconfig: Path, nodes: list[tuple[str, Any, int]], context: str, interval: float) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    with KubeEmulator() as kube:
        kube.create_namespace("gpu-operator")  # where a GPU cluster runs the GPU Operator (the install binds a Role there)
        for name, model, count in nodes:
            add_gpu_node(kube, name, model, count)
        play_runai_lite(kube)
        kube.write_kubeconfig(kubeconfig, context=context)
        loop = threading.Thread(target=run_cluster, args=(kube, stop, interval), name="cluster", daemon=True)
        loop.start()
        print(f"ready {kube.url}", flush=True)
        stop.wait()
        loop.join(10)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.kube_emulator",
                                     description="The Kubernetes API emulator as a process, to try runai-lite "
                                                 "without a cluster.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="Serve on 127.0.0.1 until SIGTERM; print `ready` once serving.")
    serve_parser.add_argument("--kubeconfig", required=True, type=Path,
                              help="Where to write the kubeconfig whose current context reaches the emulator.")
    serve_parser.add_argument("--nodes", required=True, help="NAME=MODEL:COUNT[,NAME=MODEL:COUNT...], e.g. "
                                                             "gpu-node-1=A100-SXM4-40GB:1")
    serve_parser.add_argument("--context", default="emulator", help="The kubeconfig context's name.")
    serve_parser.add_argument("--interval", type=float, default=0.2,
                              help="Seconds between passes of the Job controller and the kubelets.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        nodes = parse_nodes(args.nodes)
    except NodeSpecError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 2
    if args.interval <= 0:
        print("Error: --interval must be a positive number of seconds", file=sys.stderr)
        return 2
    return serve(args.kubeconfig, nodes, args.context, args.interval)
