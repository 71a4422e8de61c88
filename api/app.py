"""`create_app(settings)`: the ASGI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from api.config import Settings
from api.core.errors import Unavailable
from api.graphql.view import AmendGraphQL
from api.http.middleware import BodyLimitMiddleware, CORSMiddleware, SecurityHeadersMiddleware
from api.rest import routes as rest_routes
from api.services.container import Services


def create_app(settings: Settings, *, services: Services | None = None) -> Starlette:
    services = services or Services.build(settings)
    graphql = AmendGraphQL(services)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.start()
        yield
        await services.close()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def on_unavailable(request: Request, _exc: Exception) -> Response:
        return rest_routes.unavailable(request.url.path)

    app = Starlette(
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz, methods=["GET"]),
            *rest_routes.ROUTES,
            rest_routes.OPENAPI_ROUTE,
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(CORSMiddleware, services=services),
            Middleware(
                BodyLimitMiddleware,
                limit=settings.max_body_bytes,
                too_large=rest_routes.too_large,
            ),
        ],
        lifespan=lifespan,
        exception_handlers={Unavailable: on_unavailable},
    )
    app.state.services = services
    return app
