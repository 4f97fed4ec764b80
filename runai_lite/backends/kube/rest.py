"""What the backend needs of the Kubernetes API without importing the `kubernetes` package: API
paths and the error the client raises. Only `client.py` imports `kubernetes`, and only on demand."""

from __future__ import annotations

from urllib.parse import quote

from ...errors import OperationalError


class ApiError(OperationalError):
    """The API server refused a request. `status` is the HTTP status (404, 409, ...)."""

    def __init__(self, status: int, reason: str, message: str):
        super().__init__(f"Kubernetes API: {status} {reason}: {message}")
        self.status = status
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409


def core(resource: str, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
    return _path("/api/v1", resource, namespace, name, sub)


def group(api: str, resource: str, namespace: str | None = None, name: str | None = None,
          sub: str | None = None) -> str:
    return _path(f"/apis/{api}", resource, namespace, name, sub)


def _path(prefix: str, resource: str, namespace: str | None, name: str | None, sub: str | None) -> str:
    path = prefix
    if namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource}"
    if name:
        path += f"/{quote(name, safe='')}"
    if sub:
        path += f"/{sub}"
    return path
