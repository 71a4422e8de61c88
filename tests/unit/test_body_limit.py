"""The body limit trusts a declared Content-Length only when it frames the body."""

from __future__ import annotations

from typing import Any, cast

from api.http.edge import EdgeMiddleware
from api.http.observability import Metrics


async def _run(headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> tuple[int, bool]:
    called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal called
        called = True
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "method": "POST", "path": "/graphql", "headers": headers}
    # No Origin header: the edge layer never consults the services.
    edge = EdgeMiddleware(app, services=cast(Any, None), metrics=Metrics(), limit=10)
    await edge(scope, receive, send)
    return status, called


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    assert await _run([(b"content-length", b"11")], [b"x" * 11]) == (413, False)


async def test_a_declared_length_within_the_limit_passes_straight_through() -> None:
    assert await _run([(b"content-length", b"5")], [b"x" * 5]) == (200, True)


async def test_a_chunked_body_is_bounded_even_when_it_also_declares_a_small_length() -> None:
    headers = [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]
    assert await _run(headers, [b"x" * 6, b"x" * 6]) == (413, False)


async def test_a_chunked_body_within_the_limit_is_served() -> None:
    assert await _run([(b"transfer-encoding", b"chunked")], [b"x" * 4, b"x" * 4]) == (200, True)
