"""ASGI middleware: body-size limit, CORS, and security headers on every response."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.errors import Unavailable
from api.services.container import Services
from api.services.origins import origin_listed

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


class BodyLimitMiddleware:
    """Refuse request bodies over `limit` bytes with 413 before any handler runs: by the
    declared Content-Length, or, for a body without one (chunked), by buffering it up to the
    limit."""

    def __init__(self, app: ASGIApp, *, limit: int, too_large: TooLarge | None = None) -> None:
        self.app = app
        self.limit = limit
        self.too_large = too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = raw_header(scope, b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(scope, receive, send)
                return
            if raw_header(scope, b"transfer-encoding") is None:
                # The server frames the body by its Content-Length: at most `declared` bytes
                # arrive, so there is nothing to bound (and no need to buffer).
                await self.app(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        custom = self.too_large(scope["path"], self.limit) if self.too_large else None
        if custom is not None:
            custom.headers["connection"] = "close"
            await custom(scope, receive, send)
            return
        body = graphql_too_large(self.limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Added unless the route set its own; responses carry account data or tokens, so they are
# never cached anywhere.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = message["headers"] = list(message.get("headers", ()))
                present = {name.lower() for name, _ in raw}
                raw.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class CORSMiddleware:
    """Preflights are answered only for listed origins; the actual request is then checked
    against its own project's policy by the auth context."""

    def __init__(self, app: ASGIApp, *, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if raw_header(scope, b"origin") is None:  # not a cross-origin request
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers["origin"]
        api_key = QueryParams(scope.get("query_string", b"")).get("key") or headers.get("x-api-key")
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        try:
            listed = await origin_listed(self.services, origin, api_key)
        except Unavailable:
            if preflight:
                await self._busy(send)
                return
            listed = False  # the request itself will meet the same busy database
        if preflight:
            await self._preflight(send, origin if listed else None)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                if listed:
                    out["access-control-allow-origin"] = origin
                    out["access-control-allow-credentials"] = "true"
                    out["access-control-expose-headers"] = EXPOSED_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _busy(self, send: Send) -> None:
        headers = [(b"vary", b"Origin"), (b"retry-after", b"1"), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _preflight(self, send: Send, origin: str | None) -> None:
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if origin is not None:
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
        status = 204 if origin is not None else 403
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


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
