"""A thin dict-in, dict-out layer over the official `kubernetes` client.

The client supplies what is hard to get right (kubeconfig and in-cluster loading, auth, TLS,
watch line framing); this layer speaks plain JSON to the API paths, so that the rest of the
backend works with the same dicts `kubectl get -o json` shows, and never depends on the client's
model classes. The `kubernetes` package is imported here, and this module is only ever imported
on demand (the CLI must start fast).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes import client as kclient
from kubernetes import config as kconfig
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.watch.watch import iter_resp_lines

from ...errors import OperationalError, UserError
from .rest import ApiError

MERGE_PATCH = "application/merge-patch+json"
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def _api_error(error: ApiException) -> ApiError:
    message = error.body or ""
    try:
        body = json.loads(error.body) if error.body else {}
        message = body.get("message", message)
    except (ValueError, TypeError):
        pass
    return ApiError(error.status or 0, str(error.reason or ""), str(message))


def load_api_client(context: str | None = None, kubeconfig: str | None = None) -> kclient.ApiClient:
    """An ApiClient from the kubeconfig (`$KUBECONFIG`, `~/.kube/config`), as `kubectl` loads it."""
    configuration = kclient.Configuration()
    # Read $KUBECONFIG now, not when `kubernetes.config` was imported (which fixed its default then).
    files = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        kconfig.load_kube_config(config_file=files, context=context, client_configuration=configuration)
    except (ConfigException, FileNotFoundError) as error:
        raise UserError(f"cannot use Kubernetes context {context or '(current)'}: {error}",
                        "check `kubectl config get-contexts`, or go back with `runai config cluster local`") from None
    return kclient.ApiClient(configuration)


def in_cluster_api_client() -> kclient.ApiClient:
    configuration = kclient.Configuration()
    kconfig.load_incluster_config(client_configuration=configuration)
    return kclient.ApiClient(configuration)


class KubeApi:
    """JSON requests to API paths such as `/api/v1/namespaces/ns/pods`."""

    def __init__(self, api_client: kclient.ApiClient):
        self.api_client = api_client
        # Told the Kubernetes verb and HTTP status of each request (0: the API was unreachable);
        # the programs count them in their metrics.
        self.on_request: Callable[[str, int], None] | None = None

    @classmethod
    def from_kubeconfig(cls, context: str | None = None, kubeconfig: str | None = None) -> KubeApi:
        return cls(load_api_client(context, kubeconfig))

    @classmethod
    def in_cluster(cls) -> KubeApi:
        return cls(in_cluster_api_client())

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def _call(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
              content_type: str | None = None, timeout: float | None = None, verb: str | None = None):
        status = 0
        try:
            response = self._send(method, path, query, body, content_type, timeout)
            status = response.status
            return response
        except ApiError as error:
            status = error.status
            raise
        finally:
            if self.on_request is not None:
                self.on_request(verb or VERBS.get(method, method.lower()), status)

    def _send(self, method: str, path: str, query: dict[str, Any] | None, body: Any, content_type: str | None,
              timeout: float | None):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = [(key, value) for key, value in (query or {}).items() if value is not None]
        request = self.api_client.param_serialize(method=method, resource_path=path, query_params=params,
                                                  header_params=headers, body=body, auth_settings=["BearerToken"])
        try:
            response = self.api_client.call_api(*request, _request_timeout=timeout)
        except ApiException as error:
            raise _api_error(error) from None
        except OSError as error:
            raise OperationalError(f"cannot reach the Kubernetes API at {self.host}: {error}") from None
        except Exception as error:  # urllib3's connection errors do not derive from OSError
            if type(error).__module__.startswith("urllib3"):
                raise OperationalError(f"cannot reach the Kubernetes API at {self.host}: {error}") from None
            raise
        if not 200 <= response.status <= 299:
            response.read()
            raise _api_error(ApiException(http_resp=response))
        return response

    def request(self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None,
                content_type: str | None = None, verb: str | None = None) -> dict[str, Any]:
        response = self._call(method, path, query, body, content_type, verb=verb)
        data = response.read()
        return json.loads(data) if data else {}

    # -- verbs -------------------------------------------------------------------------------

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            return self.get(path)
        except ApiError as error:
            if error.not_found:
                return None
            raise

    def list(self, path: str, label_selector: str | None = None, field_selector: str | None = None
             ) -> list[dict[str, Any]]:
        return self.list_with_version(path, label_selector, field_selector)[0]

    def list_with_version(self, path: str, label_selector: str | None = None, field_selector: str | None = None,
                          page_size: int | None = None) -> tuple[list[dict[str, Any]], str]:
        """Every item and the list's resourceVersion (where a watch resumes). With `page_size`, in
        pages of that many items (`limit`/`continue`), as client-go's informers list: the API server
        serves each page from the first page's snapshot, and answers 410 Gone once that snapshot
        is compacted away (then list again)."""
        items: list[dict[str, Any]] = []
        token = None
        while True:
            data = self.request("GET", path, {"labelSelector": label_selector, "fieldSelector": field_selector,
                                              "limit": page_size, "continue": token}, verb="list")
            items += data.get("items") or []
            meta = data.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, meta.get("resourceVersion", "")

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", path, body=body)

    def create_if_absent(self, path: str, body: dict[str, Any]) -> bool:
        """Create; False (and no error) when an object of that name already exists."""
        try:
            self.create(path, body)
            return True
        except ApiError as error:
            if error.conflict:
                return False
            raise

    def replace(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", path, body=body)

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body=body, content_type=MERGE_PATCH)

    def delete(self, path: str, body: dict[str, Any] | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            self.request("DELETE", path, body=body)
            return True
        except ApiError as error:
            if error.not_found:
                return False
            raise

    def exec_in_pod(self, namespace: str, pod: str, argv: list[str]) -> int:
        """Run `argv` in the pod's first container without a terminal (the exec subresource over a
        websocket), copying its output here; its exit code."""
        from kubernetes.stream import stream

        core_api = kclient.CoreV1Api(self.api_client)
        response = stream(core_api.connect_get_namespaced_pod_exec, pod, namespace, command=argv,
                          stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
        while response.is_open():
            response.update(timeout=1)
            if response.peek_stdout():
                sys.stdout.write(response.read_stdout())
                sys.stdout.flush()
            if response.peek_stderr():
                sys.stderr.write(response.read_stderr())
                sys.stderr.flush()
        response.close()
        code = response.returncode
        return int(code) if code is not None else 0

    def pod_port(self, namespace: str, pod: str, port: int) -> Any:
        """A new stream to the pod's `port` (pods/portforward over a websocket, as `kubectl
        port-forward` opens one per connection): a socket-like object, closed by the caller. The
        stream ends when either side closes; a half-close is not carried through."""
        from kubernetes.stream import portforward

        core_api = kclient.CoreV1Api(self.api_client)
        try:
            forward = portforward(core_api.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port))
        except ApiException as error:
            raise _api_error(error) from None
        return forward.socket(port)

    def stream_lines(self, path: str, query: dict[str, Any] | None = None, timeout: float | None = None,
                     verb: str = "get") -> Iterator[str]:
        """The response body line by line, as it arrives (pod logs with `follow`)."""
        response = self._call("GET", path, query, timeout=timeout, verb=verb)
        try:
            for line in iter_resp_lines(response.response):
                yield line.decode() if isinstance(line, bytes) else line
        finally:
            response.response.release_conn()

    def watch(self, path: str, resource_version: str, timeout_seconds: int = 60,
              label_selector: str | None = None, field_selector: str | None = None) -> Iterator[dict[str, Any]]:
        """Watch events (`{"type": ..., "object": ...}`) from `resource_version` until the server
        ends the stream."""
        query = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
                 "allowWatchBookmarks": "true", "labelSelector": label_selector, "fieldSelector": field_selector}
        for line in self.stream_lines(path, query, timeout=timeout_seconds + 10, verb="watch"):
            if line.strip():
                yield json.loads(line)
