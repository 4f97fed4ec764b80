"""KubeEmulator: the API server on 127.0.0.1 in a background thread, plus direct state access for tests."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml
from aiohttp import web

from . import rbac, subresources
from .errors import ApiError
from .jobs import JobController
from .kubelet import Kubelet
from .resources import ResourceTable, ResourceType
from .selectors import labels_match, parse_label_selector
from .server import ApiServer, Fault, Request
from .store import Obj, Store

_START_TIMEOUT_S = 10
ADMIN_TOKEN = "emulator-admin"  # any token that names no service account is unrestricted


class KubeEmulator:
    """An HTTP Kubernetes API for tests.

        with KubeEmulator() as kube:
            client = kube.api_client()                      # a kubernetes.client.ApiClient
            kube.write_kubeconfig(tmp_path / "kubeconfig")  # for code that loads a kubeconfig
            kube.objects("pods", namespace="runai-team")    # state, for assertions

    Objects written through the Python API (create, patch_status, mutate, add_node, …) go through the same
    store as HTTP requests: they get resourceVersions and reach open watches.
    """

    def __init__(
        self,
        *,
        graceful_pod_deletion: bool = True,
        kubelet_admission: bool = True,
        schema_validation: bool = True,
        extra_resources: Iterable[ResourceType] = (),
        history_limit: int = 100_000,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
        seed: int | None = None,
    ):
        table = ResourceTable()
        for r in extra_resources:
            table.add(r)
        self.store = Store(table, graceful_pod_deletion=graceful_pod_deletion, schema_validation=schema_validation,
                           history_limit=history_limit, clock=clock, seed=seed)
        self.server = ApiServer(self.store)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self.kubelet = Kubelet(self, admission=kubelet_admission)
        self.job_controller = JobController(self)

    # ---- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "KubeEmulator":
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        failure: list[BaseException] = []
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            try:
                self._runner = web.AppRunner(self.server.app(), handle_signals=False, access_log=None,
                                             shutdown_timeout=1)
                self._loop.run_until_complete(self._runner.setup())
                self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
            except BaseException as e:  # reported to start() below
                failure.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(_START_TIMEOUT_S) or failure:
            raise RuntimeError(f"the Kubernetes emulator did not start: {failure[0] if failure else 'timed out'}")
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        loop = self._loop

        async def shutdown() -> None:
            self.server.close_streams()
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(_START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(_START_TIMEOUT_S)
        loop.close()
        self._thread = self._loop = None

    def __enter__(self) -> "KubeEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- clients -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the emulator is not started")
        return f"http://127.0.0.1:{self._port}"

    @staticmethod
    def _token(service_account: str | None, node: str | None = None) -> str:
        if service_account is None:
            return ADMIN_TOKEN
        namespace, slash, name = service_account.partition("/")
        if not slash or not namespace or not name:
            raise ValueError(f"service_account must be NAMESPACE/NAME, not {service_account!r}")
        return rbac.token_for(namespace, name, node)

    def client_configuration(self, service_account: str | None = None, node: str | None = None) -> Any:
        """A kubernetes.client.Configuration for the emulator: unrestricted, or acting as the service
        account `NAMESPACE/NAME`, whose requests the stored RBAC objects authorize; with `node`, with
        the token of a pod on that node (its name in `userInfo.extra`, which admission policies read)."""
        from kubernetes import client

        config = client.Configuration(host=self.url)
        config.api_key = {"BearerToken": self._token(service_account, node)}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        return config

    def api_client(self, service_account: str | None = None, node: str | None = None) -> Any:
        """A kubernetes.client.ApiClient talking to this emulator (see client_configuration)."""
        from kubernetes import client

        return client.ApiClient(self.client_configuration(service_account, node))

    def kubeconfig(self, context: str = "emulator", namespace: str | None = None,
                   service_account: str | None = None, node: str | None = None) -> Obj:
        ctx: Obj = {"cluster": context, "user": context}
        if namespace:
            ctx["namespace"] = namespace
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": context, "user": {"token": self._token(service_account, node)}}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }

    def write_kubeconfig(self, path: str | os.PathLike[str], context: str = "emulator",
                         namespace: str | None = None, service_account: str | None = None,
                         node: str | None = None) -> Path:
        """Write a kubeconfig (mode 0600) whose context `context` points at this emulator."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(self.kubeconfig(context, namespace, service_account, node), f)
        return path

    # ---- state for tests -----------------------------------------------------------------------

    def resource(self, name: str) -> ResourceType:
        """`pods`, `jobs`, `jobs.batch`, `leases`, `events.events.k8s.io`, …"""
        return self.store.resources.by_name(name)

    def objects(self, resource: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        """Copies of the stored objects (all namespaces when `namespace` is None), in namespace/name order."""
        reqs = parse_label_selector(label_selector)
        return [o for o in self.store.objects(self.resource(resource), namespace) if labels_match(reqs, o)]

    def get(self, resource: str, name: str, namespace: str | None = None) -> Obj | None:
        r = self.resource(resource)
        if r.namespaced and namespace is None:  # the first of that name in any namespace
            found = [o for o in self.objects(resource) if o["metadata"]["name"] == name]
            return found[0] if found else None
        try:
            return self.store.get(r, namespace, name)
        except ApiError as error:
            if error.code == 404:
                return None
            raise

    def create(self, resource: str, body: Obj, namespace: str | None = None) -> Obj:
        r = self.resource(resource)
        ns = namespace or (body.get("metadata") or {}).get("namespace") or ("default" if r.namespaced else None)
        return self.store.create(r, ns, body)

    def patch(self, resource: str, name: str, patch: Obj, namespace: str | None = None,
              subresource: str | None = None) -> Obj:
        """A strategic merge patch, as `kubectl patch` sends by default."""
        return self.store.patch(self.resource(resource), namespace, name, "application/strategic-merge-patch+json",
                                patch, subresource)

    def patch_status(self, resource: str, name: str, status: Obj, namespace: str | None = None) -> Obj:
        return self.patch(resource, name, {"status": status}, namespace, subresource="status")

    def mutate(self, resource: str, name: str, change: Callable[[Obj], None], namespace: str | None = None) -> Obj:
        """Change any part of an object (status and server-owned metadata included) through a function."""
        return self.store.mutate(self.resource(resource), namespace, name, change)

    def delete(self, resource: str, name: str, namespace: str | None = None, **options: Any) -> Obj:
        return self.store.delete(self.resource(resource), namespace, name, options)

    def create_namespace(self, name: str, labels: dict[str, str] | None = None) -> Obj:
        return self.create("namespaces", {"metadata": {"name": name, "labels": dict(labels or {})}})

    def add_node(self, name: str, *, labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None, capacity: dict[str, str] | None = None,
                 ready: bool = True, taints: list[Obj] | None = None,
                 devices: dict[str, list[str]] | None = None) -> Obj:
        """A node as a kubelet registers it: Ready, with capacity = allocatable (cpu, memory, pods + extras).
        `devices` names the device IDs of an extended resource (its count becomes the capacity); other
        extended resources get generated IDs (`kubelet.device_plugin`)."""
        resources = {"cpu": "16", "memory": "64Gi", "pods": "110", **(capacity or {})}
        for resource, ids in (devices or {}).items():
            self.kubelet.device_plugin.set_devices(name, resource, ids)
            resources[resource] = str(len(ids))
        return self.create("nodes", {
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})},
                         "annotations": dict(annotations or {})},
            "spec": {"taints": list(taints)} if taints else {},
            "status": {
                "capacity": dict(resources),
                "allocatable": dict(resources),
                "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletReady",
                                "lastHeartbeatTime": self.store.now(), "lastTransitionTime": self.store.now()}],
                "addresses": [{"type": "Hostname", "address": name}],
                "nodeInfo": {"kubeletVersion": "v1.31.0", "kubeProxyVersion": "v1.31.0", "architecture": "amd64",
                             "operatingSystem": "linux", "osImage": "Emulated Linux", "kernelVersion": "6.8.0",
                             "containerRuntimeVersion": "containerd://1.7.0", "machineID": name, "systemUUID": name,
                             "bootID": name},
            },
        })

    def set_pod_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """What GET pods/log answers for this pod (container may be left out for a one-container pod)."""
        subresources.write_log(self.store, namespace, pod, text, container)

    def serve_pod_port(self, namespace: str, pod: str, port: int, address: tuple[str, int]) -> None:
        """Make the pod's `port` reachable through pods/portforward: a stream to it is a TCP
        connection to `address` (a server the test runs, standing for the container's process)."""
        with self.store.lock:
            self.store.pod_ports[(namespace, pod, port)] = address

    def append_pod_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Add to the log; an open `follow` stream sends the new text."""
        subresources.write_log(self.store, namespace, pod, text, container, append=True)

    @property
    def warnings(self) -> list[str]:
        """Every unknown field the emulator dropped from a written object, as `<Kind>/<name>: unknown field "…"`."""
        return list(self.store.warnings)

    @property
    def resource_version(self) -> int:
        return self.store.resource_version

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK event (the current resourceVersion) on every open watch that asked for
        bookmarks with allowWatchBookmarks; a watch also gets one as its timeoutSeconds runs out."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.server.send_bookmarks)

    def end_watches(self) -> None:
        """End every open watch stream now, as an API server restart or a dropped connection does, so
        that a test sees the code under test reconnect."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.server.end_watches)

    def compact(self) -> None:
        """Forget the watch history: a watch resuming from an older resourceVersion gets 410 Gone."""
        self.store.compact()

    # ---- requests and faults -------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every API call served so far, in order."""
        return self.server.recorded_requests()

    def requests_for(self, verb: str | None = None, resource: str | None = None,
                     subresource: str | None = None) -> list[Request]:
        return [q for q in self.requests if verb in (None, q.verb) and resource in (None, q.resource)
                and subresource in (None, q.subresource)]

    def clear_requests(self) -> None:
        self.server.clear_requests()

    def fail_next(self, status: int = 500, *, verb: str | None = None, resource: str | None = None,
                  subresource: str | None = None, name: str | None = None, namespace: str | None = None,
                  times: int = 1, message: str = "injected by the emulator") -> Fault:
        """Answer the next `times` matching requests with `status` (a Status error) and change nothing:
        e.g. fail_next(500, verb="create", resource="pods", subresource="binding")."""
        fault = Fault(status, verb, resource, subresource, name, namespace, times, message)
        self.server.add_fault(fault)
        return fault
