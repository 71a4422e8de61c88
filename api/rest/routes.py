"""The REST routes, and the 413 answer in each route's own envelope."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from api.core.errors import AmendError, Reason
from api.rest import ce, me, user_v1
from api.rest.envelopes import ce_error, me_error, user_v1_error

ROUTES = [
    Route("/1/ce/{endpoint}", ce.record, methods=["GET", "PUT", "POST"]),
    Route("/1/ce/{endpoint}/login", ce.login, methods=["POST"]),
    Route("/api/user/v1/update", user_v1.update, methods=["PUT", "POST"]),
    Route("/api/user/v1/login", user_v1.login, methods=["POST"]),
    Route("/me", me.me, methods=["GET", "PATCH"]),
]


def too_large(path: str, limit: int) -> Response | None:
    """The 413 of the REST route `path` names, or None for non-REST paths."""
    error = AmendError(Reason.PAYLOAD_TOO_LARGE, f"the request body is larger than {limit} bytes")
    if path.startswith("/1/ce/"):
        return ce_error(error)
    if path.startswith("/api/user/v1/"):
        return user_v1_error(error)
    if path == "/me":
        return me_error(error)
    return None
