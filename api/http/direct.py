"""The busiest routes, served before Starlette's exception layer and router."""

from __future__ import annotations

from collections.abc import Sequence

from starlette._utils import get_route_path
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class DirectRoutes:
    """Routes with a fixed path whose HTTP requests skip Starlette's exception layer and
    router: a request for one of their paths, with a method the route allows, goes straight
    to the route's ASGI app, found by the router's own rule for the path. Anything else (a
    WebSocket, another method's 405, every other route) is routed as usual.

    Only for endpoints that answer every error in their API's envelope themselves, raising
    nothing for an exception handler: the GraphQL view, and the REST endpoints
    (`api.rest.routes.Endpoint`). The exception layer's request object and `send` wrapper
    and the router's matching cost about 8 of the 72 µs a GraphQL `me` took in process, and
    5 % of a REST `PATCH /me` (measured): more than any other single step of either."""

    def __init__(self, app: ASGIApp, *, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes: dict[str, tuple[frozenset[str], ASGIApp]] = {}
        for route in routes:
            if route.param_convertors or route.methods is None:
                raise ValueError(f"{route.path}: a direct route has a fixed path and methods")
            self.routes[route.path] = (frozenset(route.methods), route.app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.routes.get(get_route_path(scope))
            if found is not None and scope["method"] in found[0]:
                await found[1](scope, receive, send)
                return
        await self.app(scope, receive, send)
