"""What the edge layer (`api.http.edge`), the GraphQL view and the REST routes share: header
reads and the media type, body replay, and the CORS policy's constants."""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import Response
from starlette.types import Message, Receive, Scope

ALLOWED_HEADERS = "authorization, content-type, if-match, x-access-token, x-api-key, x-master-key"
ALLOWED_METHODS = "GET, POST, PUT, PATCH, OPTIONS"
EXPOSED_HEADERS = "authorization, etag, retry-after"

# path, limit -> the 413 in the envelope of the API the path names (the application decides,
# from the error catalogue).
TooLarge = Callable[[str, int], Response]


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


def media_type(scope: Scope) -> str:
    """The request's media type: its Content-Type without parameters, lowercased."""
    content_type = raw_header(scope, b"content-type") or b""
    return content_type.decode("latin-1").split(";", 1)[0].strip().lower()
