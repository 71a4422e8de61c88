"""What the edge layer (`api.http.edge`) and the GraphQL view share: header reads, body
replay, the CORS policy's constants and the GraphQL 413 body."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.responses import Response
from starlette.types import Message, Receive, Scope

ALLOWED_HEADERS = "authorization, content-type, if-match, x-access-token, x-api-key, x-master-key"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, OPTIONS"
EXPOSED_HEADERS = "authorization, etag, retry-after"

# path, limit -> the route's own 413 response, or None for the GraphQL envelope.
TooLarge = Callable[[str, int], Response | None]


def graphql_too_large(limit: int) -> bytes:
    message = f"the request body is larger than {limit} bytes"
    return orjson.dumps(
        {
            "errors": [
                {
                    "message": message,
                    "extensions": {"code": "PAYLOAD_TOO_LARGE", "reason": "PAYLOAD_TOO_LARGE"},
                }
            ]
        }
    )


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over an already read body, then defers to the real one."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def raw_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a header (`name` in lowercase, as ASGI gives names), undecoded."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None
