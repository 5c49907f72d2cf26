"""Kubernetes ``Status`` failures, raised anywhere and rendered once by the HTTP layer.

Clients branch on ``code`` and ``reason`` (kubernetes-asyncio raises ``ApiException(status=code)``,
kubectl prints ``message``), so every failure carries the same triple as the real API server.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """A request that fails with a ``metav1.Status`` body."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The wire ``Status`` object for this failure."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(kind: str, name: str, group: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": kind}
    if group:
        details["group"] = group
    return details


def _qualified(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def not_found(plural: str, group: str, name: str) -> APIError:
    return APIError(
        404, "NotFound", f'{_qualified(plural, group)} "{name}" not found', _details(plural, name, group)
    )


def already_exists(plural: str, group: str, name: str) -> APIError:
    return APIError(
        409,
        "AlreadyExists",
        f'{_qualified(plural, group)} "{name}" already exists',
        _details(plural, name, group),
    )


def conflict(plural: str, group: str, name: str, why: str | None = None) -> APIError:
    reason = (
        why or "the object has been modified; please apply your changes to the latest version and try again"
    )
    return APIError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(plural, group)} "{name}": {reason}',
        _details(plural, name, group),
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> APIError:
    """422 with one cause per bad field, like the real validation errors."""
    joined = ", ".join(f"{field}: {message}" for field, message in causes)
    details = _details(kind, name, group)
    details["causes"] = [
        {"reason": "FieldValueInvalid", "message": message, "field": field} for field, message in causes
    ]
    return APIError(422, "Invalid", f'{kind}.{group or "core"} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str, accepted: list[str]) -> APIError:
    return APIError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted)
        + (f" (got {content_type!r})" if content_type else ""),
    )


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def too_many_requests(message: str, causes: list[dict[str, str]]) -> APIError:
    return APIError(429, "TooManyRequests", message, {"causes": causes})


def internal(message: str) -> APIError:
    return APIError(500, "InternalError", message)


def forbidden(plural: str, group: str, name: str, why: str) -> APIError:
    return APIError(
        403,
        "Forbidden",
        f'{_qualified(plural, group)} "{name}" is forbidden: {why}',
        _details(plural, name, group),
    )
