"""The busiest routes are served before the router, by the router's own rules for them."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import Route

from api.http.direct import DirectRoutes


class _App:
    """An ASGI app that records the scopes it was called with."""

    def __init__(self) -> None:
        self.called: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called.append(scope)


def _direct() -> tuple[DirectRoutes, _App, _App]:
    endpoint, router = _App(), _App()
    direct = DirectRoutes(router, routes=[Route("/graphql", endpoint, methods=["GET", "POST"])])
    return direct, endpoint, router


async def _receive() -> dict[str, Any]:
    raise AssertionError("not read")


async def _send(message: Any) -> None:
    raise AssertionError("nothing sent")


def _scope(method: str, path: str, *, kind: str = "http", root_path: str = "") -> dict[str, Any]:
    return {"type": kind, "method": method, "path": path, "root_path": root_path}


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
async def test_an_allowed_method_on_a_direct_path_skips_the_router(method: str) -> None:
    direct, endpoint, router = _direct()
    await direct(_scope(method, "/graphql"), _receive, _send)
    assert (len(endpoint.called), len(router.called)) == (1, 0)


@pytest.mark.parametrize(
    "scope",
    [
        _scope("PUT", "/graphql"),  # the router answers its 405
        _scope("GET", "/graphql", kind="websocket"),
        _scope("POST", "/graphql/"),
        _scope("POST", "/me"),
        {"type": "lifespan"},
    ],
)
async def test_everything_else_is_routed_as_usual(scope: dict[str, Any]) -> None:
    direct, endpoint, router = _direct()
    await direct(scope, _receive, _send)
    assert (len(endpoint.called), len(router.called)) == (0, 1)


async def test_a_path_under_the_root_path_is_matched_as_the_router_does() -> None:
    direct, endpoint, router = _direct()
    await direct(_scope("POST", "/auth/graphql", root_path="/auth"), _receive, _send)
    assert (len(endpoint.called), len(router.called)) == (1, 0)


def test_a_route_with_path_parameters_cannot_be_direct() -> None:
    with pytest.raises(ValueError, match="fixed path"):
        DirectRoutes(_App(), routes=[Route("/1/ce/{endpoint}", _App(), methods=["GET"])])
