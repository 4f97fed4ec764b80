"""API errors shaped as the API server's `Status` objects, so the client raises ApiException with the right status."""

from __future__ import annotations

from typing import Any

# reason per HTTP status, as metav1.StatusReason spells them
_REASONS = {
    400: "BadRequest",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def not_found(plural: str, name: str, group: str = "") -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(404, f'{what} "{name}" not found', details={"name": name, "group": group, "kind": plural})


def already_exists(plural: str, name: str, group: str = "") -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(409, f'{what} "{name}" already exists', reason="AlreadyExists",
                    details={"name": name, "group": group, "kind": plural})


def conflict(plural: str, name: str, why: str, group: str = "") -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(409, f'Operation cannot be fulfilled on {what} "{name}": {why}',
                    details={"name": name, "group": group, "kind": plural})


def invalid(kind: str, name: str, causes: list[str]) -> ApiError:
    return ApiError(422, f'{kind} "{name}" is invalid: {"; ".join(causes)}', details={"name": name, "kind": kind})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def success_status(code: int = 200, **details: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details:
        out["details"] = details
    return out
