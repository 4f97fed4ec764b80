"""The aiohttp application: URL routing onto the resource table, discovery, watch and log streams,
fault injection and the request log."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from . import errors, policies, rbac, subresources, tables
from .errors import ApiError
from .resources import ResourceType
from .selectors import fields_match, labels_match, parse_field_selector, parse_label_selector
from .store import Obj, Store, WatchEvent

KUBERNETES_VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-runai-lite-emulator",
                      "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                      "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.22", "compiler": "gc",
                      "platform": "linux/amd64"}
_WATCH_DEFAULT_TIMEOUT_S = 1800
_LOG_FOLLOW_POLL_S = 0.05
# the verbs each subresource serves (None: the resource itself serves them all)
_SUBRESOURCE_VERBS = {"status": {"get", "update", "patch"}, "binding": {"create"}, "bindings": {"create"},
                      "eviction": {"create"}, "log": {"get"}, "portforward": {"get", "create"}}
# pods/portforward over a websocket (what kubernetes' Python client speaks): per port a data and an
# error channel, each opened by a frame with the port number; then frames of (channel byte, bytes).
PORTFORWARD_PROTOCOLS = ("v4.channel.k8s.io", "channel.k8s.io")
BOOKMARK = "BOOKMARK"


@dataclass(frozen=True)
class Request:
    """One API call as the emulator saw it, for assertions (`emulator.requests`)."""

    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    resource: str  # kubectl-style key: pods, jobs.batch
    namespace: str | None
    name: str | None
    subresource: str | None
    status: int
    query: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    user: str | None = None  # the service account it acted as; None for the unrestricted admin


@dataclass
class Fault:
    """Answer matching requests with an error instead of serving them (`emulator.fail_next`)."""

    status: int
    verb: str | None = None
    resource: str | None = None
    subresource: str | None = None
    name: str | None = None
    namespace: str | None = None
    times: int = 1
    message: str = "injected by the emulator"

    def matches(self, verb: str, r: ResourceType, namespace: str | None, name: str | None, sub: str | None) -> bool:
        return (
            self.times > 0
            and self.verb in (None, verb)
            and self.resource in (None, r.key, r.plural)
            and self.subresource in (None, sub)
            and self.name in (None, name)
            and self.namespace in (None, namespace)
        )


@dataclass(frozen=True)
class Target:
    resource: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def watch_view(event: WatchEvent, namespace: str | None, matches: Callable[[Obj], bool]) -> tuple[str, Obj] | None:
    """What a filtered watch sees of an event: an object entering the selection is ADDED, one leaving it is
    DELETED, as the API server's watch cache reports them."""
    if namespace is not None and event.object["metadata"].get("namespace") != namespace:
        return None
    now = matches(event.object)
    if event.type != "MODIFIED":
        return (event.type, event.object) if now else None
    before = event.old is not None and matches(event.old)
    if now and before:
        return "MODIFIED", event.object
    if now:
        return "ADDED", event.object
    if before:
        return "DELETED", event.object
    return None


class ApiServer:
    def __init__(self, store: Store):
        self.store = store
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._watches: set[asyncio.Queue] = set()
        self._stopping = False

    def recorded_requests(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self.faults.append(fault)

    # ---- application ---------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def end_watches(self) -> None:
        """End every open watch stream (called on the server's loop)."""
        for queue in list(self._watches):
            queue.put_nowait(None)

    def close_streams(self) -> None:
        """End every open watch and log stream (called on the server's loop at shutdown)."""
        self._stopping = True
        self.end_watches()

    def send_bookmarks(self) -> None:
        """Send a BOOKMARK to every open watch that allows them (called on the server's loop)."""
        for queue in list(self._watches):
            queue.put_nowait(BOOKMARK)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        try:
            discovery = self._discovery(path)
            if discovery is not None:
                return discovery
            target = self._route(path)
            return await self._serve(request, target)
        except ApiError as e:
            return web.json_response(e.status(), status=e.code)
        except Exception as e:  # an emulator bug: answer a Status the client can show, and say where
            logging.getLogger(__name__).exception("kube emulator: %s %s", request.method, request.path)
            return web.json_response(ApiError(500, f"emulator error: {e!r}").status(), status=500)

    # ---- discovery ----------------------------------------------------------------------------

    def _discovery(self, path: str) -> web.StreamResponse | None:
        table = self.store.resources
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return web.json_response(KUBERNETES_VERSION)
        if path == "/api":
            return web.json_response({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        if path == "/apis":
            return web.json_response({"kind": "APIGroupList", "apiVersion": "v1",
                                      "groups": [self._group(g, vs) for g, vs in table.groups().items()]})
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m and m.group(1) in table.groups():
            return web.json_response({"kind": "APIGroup", "apiVersion": "v1",
                                      **self._group(m.group(1), table.groups()[m.group(1)])})
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if m:
            group, version = (m.group(2) or "", m.group(1) or m.group(3))
            listed = table.in_group_version(group, version)
            if listed:
                return web.json_response(self._resource_list(group, version, listed))
        return None

    @staticmethod
    def _group(name: str, versions: list[str]) -> Obj:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}

    @staticmethod
    def _resource_list(group: str, version: str, resources: Any) -> Obj:
        out = []
        for r in resources:
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
            out.append({"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": verbs, "shortNames": list(r.short_names)})
            for sub in sorted(r.subresources):
                sub_verbs = {"status": ["get", "patch", "update"], "binding": ["create"],
                             "eviction": ["create"], "log": ["get"], "portforward": ["create", "get"]}[sub]
                kind = {"binding": "Binding", "eviction": "Eviction", "log": "Pod",
                        "portforward": "PodPortForwardOptions"}.get(sub, r.kind)
                out.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                            "kind": kind, "verbs": sub_verbs})
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version, "resources": out}

    # ---- routing ------------------------------------------------------------------------------

    def _route(self, path: str) -> Target:
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        namespace = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        if group == "" and rest[0] == "bindings" and namespace is not None and len(rest) == 1:
            return Target(self.store.resources.by_name("pods"), namespace, None, "bindings")
        r = self.store.resources.by_url(group, version, rest[0])
        if r is None or len(rest) > 3 or (namespace is not None and not r.namespaced):
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if r.namespaced and name is not None and namespace is None:
            raise ApiError(404, "the server could not find the requested resource")
        if sub is not None and sub not in r.subresources:
            raise ApiError(404, "the server could not find the requested resource")
        return Target(r, namespace, name, sub)

    @staticmethod
    def _verb(method: str, t: Target, watch: bool) -> str:
        if method == "GET":
            return ("watch" if watch else "list") if t.name is None else "get"
        if method == "POST":
            return "create"
        if method == "PUT":
            return "update"
        if method == "PATCH":
            return "patch"
        if method == "DELETE":
            return "deletecollection" if t.name is None else "delete"
        raise ApiError(405, f"method {method} is not supported")

    def _take_fault(self, verb: str, t: Target) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(verb, t.resource, t.namespace, t.name, t.subresource):
                    fault.times -= 1
                    return fault
        return None

    def _record(self, request: web.Request, verb: str, t: Target, status: int) -> None:
        subject = rbac.subject_from_authorization(request.headers.get("Authorization"))
        with self._lock:
            self.requests.append(Request(verb, t.resource.key, t.namespace, t.name, t.subresource, status,
                                         dict(request.query), request.headers.get("Content-Type"),
                                         subject.user if subject else None))

    def _authorize(self, request: web.Request, verb: str, t: Target) -> None:
        subject = rbac.subject_from_authorization(request.headers.get("Authorization"))
        if subject is None:
            return
        if t.subresource == "bindings":  # POST namespaces/{ns}/bindings is the `bindings` resource
            attrs = rbac.Attributes(verb, "", "bindings", None, t.namespace, None)
        else:
            attrs = rbac.Attributes(verb, t.resource.group, t.resource.plural, t.subresource, t.namespace, t.name)
        table, store = self.store.resources, self.store
        roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r
                 for r in store.objects(table.by_name("roles.rbac.authorization.k8s.io"))}
        cluster_roles = {r["metadata"]["name"]: r
                         for r in store.objects(table.by_name("clusterroles.rbac.authorization.k8s.io"))}
        if not rbac.authorized(subject, attrs, roles, cluster_roles,
                               store.objects(table.by_name("rolebindings.rbac.authorization.k8s.io")),
                               store.objects(table.by_name("clusterrolebindings.rbac.authorization.k8s.io"))):
            raise rbac.forbidden(subject, attrs)

    async def _serve(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        watch = q.get("watch", "").lower() in ("true", "1")
        verb = self._verb(request.method, t, watch)
        try:
            if t.subresource is not None and verb not in _SUBRESOURCE_VERBS[t.subresource]:
                raise ApiError(405, f"{request.method} is not supported on {t.resource.plural}/{t.subresource}")
            self._authorize(request, verb, t)
            fault = self._take_fault(verb, t)
            if fault is not None:
                raise ApiError(fault.status, fault.message)
            if verb == "watch":
                self._record(request, verb, t, 200)
                return await self._watch(request, t)
            if t.subresource == "log" and verb == "get":
                self._record(request, verb, t, 200)
                return await self._log(request, t)
            if t.subresource == "portforward":
                return await self._portforward(request, t)
            body = await self._body(request)
            warnings: list[str] = []
            subject = rbac.subject_from_authorization(request.headers.get("Authorization"))
            user = policies.UserInfo(subject.user, subject.groups, subject.extra) if subject else policies.ADMIN
            with policies.acting_as(user):
                result, status = self._dispatch(request, verb, t, body, warnings)
        except ApiError as e:
            self._record(request, verb, t, e.code)
            raise
        self._record(request, verb, t, status)
        if verb in ("get", "list") and t.subresource is None and tables.wants_table(request.headers.get("Accept", "")):
            result = tables.table(t.resource, result, self.store.clock(), request.query.get("includeObject", "Metadata"))
        response = web.json_response(result, status=status)
        for warning in warnings:  # as the API server reports dropped fields (RFC 7234 warn-code 299)
            escaped = warning.replace('"', '\\"')
            response.headers.add("Warning", f'299 - "{escaped}"')
        return response

    @staticmethod
    async def _body(request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise errors.bad_request(f"the request body is not valid JSON: {e}") from None

    def _dispatch(self, request: web.Request, verb: str, t: Target, body: Any, warnings: list[str]
                  ) -> tuple[Obj, int]:
        store, r, q = self.store, t.resource, request.query
        dry_run = "dryRun" in q
        if verb == "get":
            return store.get(r, t.namespace, t.name or ""), 200
        if verb == "list":
            limit = int(q["limit"]) if q.get("limit", "").isdigit() else None
            return store.list(r, t.namespace, q.get("labelSelector"), q.get("fieldSelector"), limit,
                              q.get("continue")), 200
        if verb == "create":
            if t.subresource == "binding" or t.subresource == "bindings":
                name = t.name or ((body or {}).get("metadata") or {}).get("name", "")
                return subresources.bind(store, t.namespace or "", name, body), 201
            if t.subresource == "eviction":
                return subresources.evict(store, t.namespace or "", t.name or "", body), 201
            if t.name is not None:
                raise ApiError(405, f"POST is not supported on {r.plural}/{t.name}")
            if r.namespaced and t.namespace is None:
                raise ApiError(404, "the server could not find the requested resource")
            return store.create(r, t.namespace, body, dry_run, warnings), 201
        if verb == "update":
            return store.update(r, t.namespace, t.name or "", body, t.subresource, dry_run, warnings), 200
        if verb == "patch":
            content_type = request.headers.get("Content-Type", "")
            return store.patch(r, t.namespace, t.name or "", content_type, body, t.subresource, dry_run,
                               warnings), 200
        options = dict(body or {})
        for param in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents"):
            if param in q:
                value: Any = q[param]
                if param == "gracePeriodSeconds":
                    value = int(value)
                elif param == "orphanDependents":
                    value = value.lower() == "true"
                options[param] = value
        if verb == "delete":
            return store.delete(r, t.namespace, t.name or "", options, dry_run), 200
        listed = store.delete_collection(r, t.namespace, q.get("labelSelector"), q.get("fieldSelector"), options)
        return listed, 200

    # ---- streams ------------------------------------------------------------------------------

    async def _stream_response(self, request: web.Request, content_type: str) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        response.content_type = content_type
        response.enable_chunked_encoding()
        await response.prepare(request)
        return response

    async def _watch(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        lreqs = parse_label_selector(q.get("labelSelector"))
        freqs = parse_field_selector(q.get("fieldSelector"), t.resource.supports_field)
        timeout = int(q["timeoutSeconds"]) if q.get("timeoutSeconds", "").isdigit() else _WATCH_DEFAULT_TIMEOUT_S
        loop = asyncio.get_running_loop()
        bookmarks = q.get("allowWatchBookmarks", "").lower() in ("true", "1")
        as_table = q.get("includeObject", "Metadata") if tables.wants_table(request.headers.get("Accept", "")) \
            else None
        queue: asyncio.Queue[WatchEvent | str | None] = asyncio.Queue()

        def matches(obj: Obj) -> bool:
            return labels_match(lreqs, obj) and fields_match(freqs, obj)

        def notify(event: WatchEvent) -> None:
            if not loop.is_closed():  # a write after shutdown has no watcher left to reach
                loop.call_soon_threadsafe(queue.put_nowait, event)

        try:
            replay, unsubscribe = self.store.watch(t.resource, q.get("resourceVersion"), notify)
        except ApiError as e:
            if e.code != 410:
                raise
            response = await self._stream_response(request, "application/json")
            await self._write_event(response, "ERROR", e.status())
            return response
        self._watches.add(queue)
        response = await self._stream_response(request, "application/json")
        try:
            for event in replay:
                await self._send(response, event, t.namespace, matches, as_table)
            deadline = loop.time() + timeout
            while (remaining := deadline - loop.time()) > 0:
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except asyncio.TimeoutError:
                    # the API server bookmarks the current version as a watch times out
                    event = BOOKMARK
                    deadline = loop.time()
                if event is None:
                    break
                if event == BOOKMARK:
                    if bookmarks:
                        await self._write_event(response, BOOKMARK, {
                            "kind": t.resource.kind, "apiVersion": t.resource.api_version,
                            "metadata": {"resourceVersion": str(self.store.resource_version)}})
                    continue
                await self._send(response, event, t.namespace, matches, as_table)
        except ConnectionResetError:
            pass  # the client went away
        finally:
            unsubscribe()
            self._watches.discard(queue)
        return response

    @staticmethod
    async def _write_event(response: web.StreamResponse, kind: str, obj: Obj) -> None:
        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

    async def _send(self, response: web.StreamResponse, event: WatchEvent, namespace: str | None,
                    matches: Callable[[Obj], bool], as_table: str | None = None) -> None:
        view = watch_view(event, namespace, matches)
        if view is not None:
            kind, obj = view
            if as_table is not None:  # `kubectl get -w`: each event's object is a one-row Table
                obj = tables.table(event.resource, obj, self.store.clock(), as_table)
            await self._write_event(response, kind, obj)

    async def _portforward(self, request: web.Request, t: Target) -> web.StreamResponse:
        """Streams to a running pod's ports (the kubelet's port forwarding), reaching what
        `serve_pod_port` named; the stream ends when the pod's side closes its connection."""
        namespace, name = t.namespace or "", t.name or ""
        ports = [int(p) for value in request.query.getall("ports", []) for p in value.split(",") if p.isdigit()]
        with self.store.lock:
            pod = self.store.get(self.store.resources.by_name("pods"), namespace, name)
            targets = {port: self.store.pod_ports.get((namespace, name, port)) for port in ports}
        if not ports:
            raise errors.bad_request("at least one port must be given (ports=...)")
        if (pod.get("status") or {}).get("phase") != "Running":
            raise errors.bad_request(f"pod {name} is not running")
        self._record(request, "create", t, 101)
        ws = web.WebSocketResponse(protocols=PORTFORWARD_PROTOCOLS)
        await ws.prepare(request)
        writers: dict[int, asyncio.StreamWriter] = {}
        pumps = []

        async def pump(reader: asyncio.StreamReader, channel: int) -> None:
            while data := await reader.read(65536):
                await ws.send_bytes(bytes((channel,)) + data)

        for index, port in enumerate(ports):
            for channel in (2 * index, 2 * index + 1):
                await ws.send_bytes(bytes((channel,)) + port.to_bytes(2, "little"))
            target = targets[port]
            try:
                if target is None:
                    raise ConnectionRefusedError("connection refused")
                reader, writer = await asyncio.open_connection(*target)
            except OSError as error:
                await ws.send_bytes(bytes((2 * index + 1,)) + f"error forwarding port {port} to pod {name}: "
                                    f"{error}".encode())
                continue
            writers[2 * index] = writer
            pumps.append(asyncio.ensure_future(pump(reader, 2 * index)))
        ended = asyncio.ensure_future(asyncio.gather(*pumps)) if pumps else None
        try:
            receiving = asyncio.ensure_future(self._forward_frames(ws, writers))
            waiting = {receiving} | ({ended} if ended else set())
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            receiving.cancel()
        finally:
            for writer in writers.values():
                writer.close()
            if ended is not None:
                ended.cancel()
            await ws.close()
        return ws

    @staticmethod
    async def _forward_frames(ws: web.WebSocketResponse, writers: dict[int, asyncio.StreamWriter]) -> None:
        async for message in ws:
            if message.type.name != "BINARY" or not message.data:
                continue
            writer = writers.get(message.data[0])
            if writer is not None:
                writer.write(message.data[1:])
                await writer.drain()

    async def _log(self, request: web.Request, t: Target) -> web.StreamResponse:
        q = request.query
        tail = int(q["tailLines"]) if q.get("tailLines", "").lstrip("-").isdigit() else None
        container = q.get("container")
        sent, finished = subresources.read_log(self.store, t.namespace or "", t.name or "", container)
        text = subresources.tail(sent, tail)
        if q.get("follow", "").lower() not in ("true", "1"):
            return web.Response(text=text, content_type="text/plain")
        response = await self._stream_response(request, "text/plain")
        await response.write(text.encode())
        try:
            while not finished and not self._stopping:
                await asyncio.sleep(_LOG_FOLLOW_POLL_S)
                try:
                    full, finished = subresources.read_log(self.store, t.namespace or "", t.name or "", container)
                except ApiError:
                    break  # the pod is gone
                if full.startswith(sent) and len(full) > len(sent):
                    await response.write(full[len(sent):].encode())
                sent = full
        except ConnectionResetError:
            pass  # the client went away
        return response
