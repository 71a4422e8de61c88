"""The one ASGI layer every HTTP request passes through before routing.

In request order: a request id; CORS (preflights answered here, listed origins marked);
the body-size limit; then the route. On the way out, every response gets the security
headers, the CORS headers and the request id, and is counted and logged.

These were four middlewares; each wrapped `send` or at least added a call level and its
own header scan to every request, which on a small update cost as much as a SQL statement.
One layer reads the request headers once and wraps `send` once.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
import types
from asyncio import AbstractEventLoop
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from starlette.datastructures import Headers, MutableHeaders, QueryParams
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.core.errors import Unavailable
from api.core.loops import LoopRef
from api.http.credentials import CORS_SLOT, CorsSlot
from api.http.middleware import (
    ALLOWED_HEADERS,
    ALLOWED_METHODS,
    EXPOSED_HEADERS,
    TooLarge,
    replaying,
)
from api.http.observability import REQUEST_ID, Metrics, new_request_id, route_name
from api.services.container import Services
from api.services.origins import origin_listed

log = logging.getLogger("amend.http")
T = TypeVar("T")

_ID = b"x-request-id"
# Added unless the route set its own; responses carry account data or tokens, so they are
# never cached anywhere.
_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_RETRY_AFTER = b"retry-after"
# nginx's "client closed request": the client went away before its request was read.
CLIENT_CLOSED = 499


class BodyTimeout(Exception):
    """The request body did not arrive within the body time-out."""


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        services: Services,
        metrics: Metrics,
        limit: int,
        body_timeout: float = 10.0,
        too_large: TooLarge | None = None,
    ) -> None:
        self.app = app
        self.services = services
        self.metrics = metrics
        self.limit = limit
        self.body_timeout = body_timeout
        self.too_large = too_large
        self._loops = LoopRef()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = origin = declared = None
        chunked = False
        for name, value in scope["headers"]:  # the first of each, as Starlette reads them
            if name == _ID:
                if request_id is None:
                    request_id = value
            elif name == b"origin":
                if origin is None:
                    origin = value
            elif name == b"content-length":
                if declared is None:
                    declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if request_id is None or not REQUEST_ID.fullmatch(request_id):
            request_id = new_request_id()
        start = time.perf_counter()
        status = 500
        throttled = False
        # Set for a cross-origin request: its auth context, for the CORS decision.
        slot: CorsSlot | None = None

        async def send_out(message: Message) -> None:
            nonlocal status, throttled
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", ()))
                if slot is not None and origin is not None:
                    _add_cors(message, origin, await self._exposed(scope, slot, origin))
                raw = message["headers"]
                present = set()
                for name, _ in raw:
                    present.add(name.lower())
                for header in _SECURITY_HEADERS:
                    if header[0] not in present:
                        raw.append(header)
                raw.append((_ID, request_id))
                throttled = status != 503 and _RETRY_AFTER in present
            await send(message)

        if chunked or (declared is not None and declared != b"0"):
            receive = _bounded(receive, self.body_timeout, self._loops)
        try:
            if origin is not None:
                if scope["method"] == "OPTIONS" and any(
                    name == b"access-control-request-method" for name, _ in scope["headers"]
                ):
                    await self._preflight(scope, origin, send_out)
                    return
                slot = scope[CORS_SLOT] = CorsSlot()
            if declared is not None and declared.isdigit():
                if int(declared) > self.limit:
                    await self._refuse(scope, receive, send_out)
                    return
                if not chunked:
                    # The server frames the body by its Content-Length: at most `declared`
                    # bytes arrive, so there is nothing to bound (and no need to buffer).
                    await self.app(scope, receive, send_out)
                    return
            await self._buffered(scope, receive, send_out)
        except BodyTimeout:
            # A client that sends its body too slowly (or never finishes it) holds a
            # connection and a task: answered 408 and closed, and counted as a 408, not a 500.
            if status == 500:
                closing = [(b"connection", b"close"), (b"content-length", b"0")]
                await _empty(send_out, 408, closing)
        except ClientDisconnect:
            status = CLIENT_CLOSED  # nobody to answer; not a server error either
        finally:
            self._record(scope, request_id, status, time.perf_counter() - start, throttled)

    def _record(
        self, scope: Scope, request_id: bytes, status: int, elapsed: float, throttled: bool
    ) -> None:
        """Count the request and log its one line."""
        route = route_name(scope["path"])
        self.metrics.observe(route, scope["method"], status, elapsed, throttled)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "request",
                extra={
                    "request_id": request_id.decode("latin-1"),
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> None:
        """No usable Content-Length (chunked): read the body, up to the limit, then serve it."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        """413 in the envelope of the API the path names, with `Connection: close`."""
        if self.too_large is None:
            await _empty(send, 413, [(b"content-length", b"0"), (b"connection", b"close")])
            return
        response = self.too_large(scope["path"], self.limit)
        response.headers["connection"] = "close"
        await response(scope, receive, send)

    async def _exposed(self, scope: Scope, slot: CorsSlot, origin_raw: bytes) -> bool:
        """Whether the answer may carry CORS headers for this origin: only when the
        request's own project lists it. A request that failed before its project was known
        (a bad key or token) answers nothing about anyone's users: its error may be read by
        an origin that some project lists exactly, as for a preflight."""
        origin = origin_raw.decode("latin-1")
        project = slot.context.origin_project() if slot.context is not None else None
        if project is not None:
            return project.lists_origin(origin)
        try:
            return await origin_listed(self.services, origin, None)
        except Unavailable:
            return False

    async def _preflight(self, scope: Scope, origin_raw: bytes, send: Send) -> None:
        """Answered only for listed origins; the actual request is then checked against its
        own project's policy by the auth context, and its answer exposed only to an origin
        that project lists."""
        headers = Headers(scope=scope)
        origin = origin_raw.decode("latin-1")
        api_key = QueryParams(scope.get("query_string", b"")).get("key") or headers.get("x-api-key")
        try:
            listed = await origin_listed(self.services, origin, api_key)
        except Unavailable:
            busy = [(b"vary", b"Origin"), (b"retry-after", b"1"), (b"content-length", b"0")]
            await _empty(send, 503, busy)
            return
        answer = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if listed:
            answer += [
                (b"access-control-allow-origin", origin_raw),
                (b"access-control-allow-credentials", b"true"),
                (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
                (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
        await _empty(send, 204 if listed else 403, answer)


def _add_cors(message: Message, origin: bytes | None, listed: bool) -> None:
    out = MutableHeaders(scope=message)
    out.add_vary_header("Origin")
    if listed and origin is not None:
        out["access-control-allow-origin"] = origin.decode("latin-1")
        out["access-control-allow-credentials"] = "true"
        out["access-control-expose-headers"] = EXPOSED_HEADERS


def _bounded(receive: Receive, timeout: float, loops: LoopRef) -> Callable[[], Awaitable[Message]]:
    """`receive` that raises `BodyTimeout` when the whole body has not arrived within
    `timeout` seconds, and `ClientDisconnect` when the client leaves before sending it all.

    A body has usually arrived with its headers: `receive` is started by hand, and a message
    it answers at once needs no timer. Only a `receive` that has to wait is continued under
    one (what `asyncio.timeout_at` does, without its context manager), which costs more
    than reading a body that is there."""
    loop = loops.loop()
    deadline = loop.time() + timeout
    complete = False

    async def bounded() -> Message:
        nonlocal complete
        if complete:  # later calls wait for a disconnect, as long as the response takes
            return await receive()
        reading = receive()
        message: Message
        if inspect.iscoroutine(reading):
            try:
                waiting_on = reading.send(None)
            except StopIteration as done:
                message = done.value
            else:
                message = await _in_time(_resumed(reading, waiting_on), loop, deadline)
        else:
            message = await _in_time(reading, loop, deadline)
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        complete = not message.get("more_body", False)
        return message

    return bounded


async def _in_time(
    reading: Awaitable[Message], loop: AbstractEventLoop, deadline: float
) -> Message:
    task = asyncio.current_task(loop)
    assert task is not None
    expired: list[bool] = []

    def expire() -> None:
        expired.append(True)
        task.cancel()

    timer = loop.call_at(deadline, expire)
    try:
        message: Message = await reading
        return message
    except asyncio.CancelledError:
        # Ours only if the timer fired and nobody else cancelled the task too.
        if expired and task.uncancel() == 0:
            raise BodyTimeout from None
        raise
    finally:
        timer.cancel()


@types.coroutine
def _resumed(coroutine: Coroutine[Any, Any, T], waiting_on: Any) -> Generator[Any, Any, T]:
    """A coroutine started by hand, which waits on `waiting_on`, continued as if its task had
    started it: the task waits on that, then the coroutine runs on; an exception thrown in
    while it waits (a cancellation) is thrown into the coroutine."""
    try:
        yield waiting_on
    except BaseException as error:
        try:
            waiting_on = coroutine.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        return (yield from _resumed(coroutine, waiting_on))
    return (yield from coroutine)  # type: ignore[no-any-return]


async def _empty(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})
