"""`runai-lite`: the in-cluster programs of runai-lite on Kubernetes.

- `runai-lite controller`: the scheduler/controller (a Deployment; one active replica by Lease);
- `runai-lite agent`: the MIG node agent (a DaemonSet on dynamic-MIG nodes);
- `runai-lite reservation`: what a reservation pod runs (reports its GPU's UUID, then waits).

Each loads the `kubernetes` client only when it runs. In a pod they use the service account;
outside one (for development) `--kubeconfig` / `--context`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from typing import Annotated

import typer

from ..errors import RunaiLiteError

app = typer.Typer(name="runai-lite", no_args_is_help=True, add_completion=False,
                  help="runai-lite's in-cluster controller, MIG node agent and reservation pod program.")

KubeconfigOption = Annotated[str | None, typer.Option("--kubeconfig", help="Use this kubeconfig instead of the "
                                                      "pod's service account.")]
ContextOption = Annotated[str | None, typer.Option("--context", help="Kubeconfig context (with --kubeconfig, or "
                                                   "$KUBECONFIG / ~/.kube/config).")]


def _api(kubeconfig: str | None, context: str | None):
    from ..backends.kube.client import KubeApi

    if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return KubeApi.from_kubeconfig(context, kubeconfig)
    return KubeApi.in_cluster()


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


MetricsPortOption = Annotated[int, typer.Option("--metrics-port", min=0, max=65535, help=(
    "Serve /metrics, /healthz and /readyz on this port (0: not at all)."))]


def _serve(api, port: int, stale_after: float):
    """The program's metrics (counting `api`'s requests) and the probes' heartbeat, served on
    `port`; the Metrics to feed and the heartbeat's `beat`."""
    from ..metrics import Metrics
    from ..metrics.endpoint import Endpoint, Heartbeat

    metrics = Metrics()
    api.on_request = metrics.observe_api_request
    heartbeat = Heartbeat(stale_after)
    if port:
        Endpoint(metrics.exposition, heartbeat.alive, heartbeat.ready, port=port).start()
    return metrics, heartbeat.beat


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command(help="Run the controller: schedule pods that name runai-lite-scheduler, keep reservation pods, "
                  "drive MIG layouts. Standby replicas wait for the Lease.")
def controller(
    image: Annotated[str, typer.Option(help="Image of the reservation pods (this image).")],
    namespace: Annotated[str, typer.Option(help="Namespace of the Lease.")] = "runai-lite",
    resync: Annotated[float, typer.Option(help="Seconds between passes when nothing changes.", min=0.1)] = 5.0,
    identity: Annotated[str | None, typer.Option(help="Lease holder name (default: $POD_NAME).")] = None,
    metrics_port: MetricsPortOption = 0,
    device_delivery: Annotated[str, typer.Option(
        envvar="RUNAI_LITE_DEVICE_DELIVERY",
        help="How fractions and MIG devices reach pods: env, cdi or device-plugin (a node's "
             "runai-lite/device-delivery label overrides it).")] = "env",
    runtime_class: Annotated[str, typer.Option(
        envvar="RUNAI_LITE_RUNTIME_CLASS", help="RuntimeClass of the reservation pods (empty: the node's default).")] = "",
    install_name: Annotated[str, typer.Option(help=(
        "What the install's objects are named after (the chart passes the release's full name): its "
        "PriorityClasses NAME-train, NAME-interactive-preemptible, NAME-build, and NAME-reservation, "
        "the reservation pods' ServiceAccount."))] = "runai-lite",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    from ..backends.heap import HeapFreezer
    from ..backends.kube.controller import Controller
    from ..devices import DeliveryMode

    try:
        delivery = DeliveryMode(device_delivery)
    except ValueError:
        raise typer.BadParameter(f"{device_delivery!r} is not a delivery mode; use one of "
                                 f"{', '.join(m.value for m in DeliveryMode)}", param_hint="--device-delivery") from None
    _logging(verbose)
    api = _api(kubeconfig, context)
    who = identity or os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
    # a pass at 1,000 nodes takes seconds; a loop silent for several resyncs and a minute is stuck
    metrics, beat = _serve(api, metrics_port, stale_after=max(60.0, 6 * resync))
    controller = Controller(api, image, metrics=metrics, delivery=delivery, runtime_class=runtime_class or None,
                            install_name=install_name)
    controller.heap = HeapFreezer()  # this process is the controller: its cache outlives every pass
    controller.run(_stop_on_signals(), who, namespace, resync, beat=beat)


@app.command(help="Run the MIG node agent: realise the node's desired MIG layout and report the actual one.")
def agent(
    node: Annotated[str | None, typer.Option(help="This node's name (default: $NODE_NAME).")] = None,
    driver: Annotated[str, typer.Option(help="nvml (real GPUs) or simulated.")] = "nvml",
    simulate: Annotated[str, typer.Option(help="Simulated inventory, e.g. A100-SXM4-40GB:1 "
                                                "(with --driver simulated).")] = "",
    state_dir: Annotated[str, typer.Option(help="Where the simulated driver keeps its GPUs.")] = "/tmp/runai-lite-agent",
    interval: Annotated[float, typer.Option(help="Seconds between passes when nothing changes.", min=0.1)] = 2.0,
    metrics_port: MetricsPortOption = 0,
    operator_namespace: Annotated[str, typer.Option(
        help="Namespace of the GPU Operator, whose device plugin and feature discovery pods on this node "
             "are restarted after a MIG change.")] = "gpu-operator",
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    from ..backends.kube.node_agent import NodeAgent

    _logging(verbose)
    name = node or os.environ.get("NODE_NAME")
    if not name:
        raise typer.BadParameter("give --node or set NODE_NAME (the DaemonSet sets it from spec.nodeName)")
    api = _api(kubeconfig, context)
    metrics, beat = _serve(api, metrics_port, stale_after=max(60.0, 6 * interval))
    NodeAgent(api, name, _driver(driver, simulate, state_dir), metrics=metrics,
              operator_namespace=operator_namespace).run(_stop_on_signals(), interval, beat=beat)


def _driver(kind: str, simulate: str, state_dir: str):
    if kind == "simulated":
        from ..gpu.simulated import SimulatedDriver

        if not simulate:
            raise typer.BadParameter("--driver simulated needs --simulate, e.g. A100-SXM4-40GB:1")
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        return SimulatedDriver(state_dir, simulate)
    if kind == "nvml":
        from ..gpu.nvml import NvmlDriver

        return NvmlDriver()
    raise typer.BadParameter(f"unknown driver {kind!r}: nvml or simulated")


@app.command(help="What a reservation pod runs: write the UUID of the GPU it holds into its own annotation, "
                  "then wait until stopped.")
def reservation(kubeconfig: KubeconfigOption = None, context: ContextOption = None) -> None:
    from ..backends.kube.node_agent import report_reserved_gpu, visible_gpu_uuids

    _logging(False)
    pod, namespace = os.environ.get("POD_NAME"), os.environ.get("POD_NAMESPACE")
    if not pod or not namespace:
        raise typer.BadParameter("POD_NAME and POD_NAMESPACE must be set (the reservation pod sets them)")
    uuids = visible_gpu_uuids(os.environ.get("NVIDIA_VISIBLE_DEVICES"))
    uuid = report_reserved_gpu(_api(kubeconfig, context), namespace, pod, uuids)
    logging.getLogger("runai_lite.reservation").info("holding GPU %s", uuid)
    _stop_on_signals().wait()


def main() -> None:
    try:
        app()
    except RunaiLiteError as error:
        typer.echo(f"Error: {error}", err=True)
        raise SystemExit(error.exit_code) from None


if __name__ == "__main__":
    main()
