"""The REST routes, their OpenAPI document, and the error answers given outside a handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.core.errors import AmendError, Unavailable
from api.rest import ce, me, user_v1
from api.rest.common import services_of
from api.rest.envelopes import JSON, ce_error, me_error, user_v1_error
from api.rest.openapi import openapi_document

Handler = Callable[[Request], Awaitable[Response]]


class BodyRequest(Request):
    """A request whose `body()` reads the ASGI messages itself, as Starlette's does (the same
    checks, the same state left behind), without Starlette's detour through `stream()`: an
    async generator, whose set-up and tear-down (the loop's async-generator hooks, `aclosing`)
    cost more than reading the small body of a REST call."""

    async def body(self) -> bytes:
        if hasattr(self, "_body"):
            return self._body
        if self._stream_consumed:
            raise RuntimeError("Stream consumed")
        chunks: list[bytes] = []
        while not self._stream_consumed:
            message = await self._receive()
            if message["type"] == "http.request":
                if not message.get("more_body", False):
                    self._stream_consumed = True
                if chunk := message.get("body", b""):
                    chunks.append(chunk)
            elif message["type"] == "http.disconnect":
                self._is_disconnected = True
                raise ClientDisconnect()
        self._body = b"".join(chunks)
        return self._body


class Endpoint:
    """A REST handler served as a plain ASGI app, which answers everything in its API's
    envelope: what the handler returns, its errors, and an unavailable database (raised by
    the store through the handler), as the catalogue's `SERVICE_UNAVAILABLE`.

    Starlette would wrap a request/response function in an exception-mapping layer of its
    own, with its own `send` wrapper; answering its own errors, an endpoint needs no
    exception layer at all, and the busiest is served before it (`api.http.direct`)."""

    __slots__ = ("envelope", "handler")

    def __init__(self, handler: Handler, envelope: Callable[[AmendError], Response]) -> None:
        self.handler = handler
        self.envelope = envelope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response = await self.handler(BodyRequest(scope, receive, send))
        except Unavailable:
            response = self.envelope(Unavailable.answer())
        await response(scope, receive, send)


ME_ROUTE = Route("/me", Endpoint(me.me, me_error), methods=["GET", "PATCH"])
ROUTES = [
    ME_ROUTE,
    Route("/1/ce/{endpoint}", Endpoint(ce.record, ce_error), methods=["GET", "PUT", "POST"]),
    Route("/1/ce/{endpoint}/login", Endpoint(ce.login, ce_error), methods=["POST"]),
    Route("/api/user/v1/update", Endpoint(user_v1.update, user_v1_error), methods=["PUT", "POST"]),
    Route("/api/user/v1/login", Endpoint(user_v1.login, user_v1_error), methods=["POST"]),
]


async def openapi_json(request: Request) -> Response:
    """`GET /openapi.json`: the OpenAPI 3.1 document of ROUTES."""
    settings = services_of(request).settings
    return JSON(
        openapi_document(cookie_name=settings.cookie_name, max_body_bytes=settings.max_body_bytes)
    )


# Served next to ROUTES, and not one of them: it is not part of the reproduced APIs.
OPENAPI_ROUTE = Route("/openapi.json", openapi_json, methods=["GET"])


def api_of(path: str) -> str | None:
    """Which reproduced API a path belongs to ("ce", "user_v1", "me"), or None."""
    if path.startswith("/1/ce/"):
        return "ce"
    if path.startswith("/api/user/v1/"):
        return "user_v1"
    if path == "/me":
        return "me"
    return None


_ERROR_ENVELOPES = {"ce": ce_error, "user_v1": user_v1_error, "me": me_error}


def error_answer(path: str, error: AmendError) -> Response | None:
    """`error` in the envelope of the REST API `path` names, or None for other paths: the
    answers given before (413) or instead of (503) a route's handler."""
    api = api_of(path)
    return None if api is None else _ERROR_ENVELOPES[api](error)
