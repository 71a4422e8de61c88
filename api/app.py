"""`create_app(settings)`: the ASGI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from api.config import Settings
from api.core.errors import AmendError, Unavailable, payload_too_large
from api.graphql.errors import error_response as graphql_error_response
from api.graphql.schema import ExtensionFactory
from api.graphql.view import AmendGraphQL
from api.http.direct import DirectRoutes
from api.http.edge import EdgeMiddleware
from api.http.observability import Metrics
from api.rest import routes as rest_routes
from api.services import health
from api.services.container import Services


def _error_answer(path: str, error: AmendError) -> Response:
    """An error in the envelope of the API the path names (GraphQL's for any other path)."""
    return rest_routes.error_answer(path, error) or graphql_error_response(error)


def _too_large(path: str, limit: int) -> Response:
    return _error_answer(path, payload_too_large(limit))


async def _on_unavailable(request: Request, _exc: Exception) -> Response:
    return _error_answer(request.url.path, Unavailable.answer())


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    graphql_extensions: Sequence[ExtensionFactory] = (),
) -> Starlette:
    """`graphql_extensions`: Strawberry schema extensions (tracing, metrics...) run for every
    GraphQL operation, after Amend's own."""
    services = services or Services.build(settings)
    graphql = AmendGraphQL(services, extensions=graphql_extensions)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await services.start()
        # Everything built so far (schema, modules, statements) lives as long as the process:
        # moved out of the collector's view, a full collection under load walks only what
        # requests allocate, which keeps its pauses (and so tail latency) short.
        gc.collect()
        gc.freeze()
        yield
        await services.close()

    metrics = Metrics()

    async def healthz(_request: Request) -> Response:
        """The process is up (liveness)."""
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        """The database answers and its schema is the newest (readiness)."""
        state = await health.readiness(services)
        body = {
            "status": "ready" if state.ready else "not ready",
            "database": state.database,
            "migrations_current": state.migrations_current,
        }
        return JSONResponse(body, status_code=200 if state.ready else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        text = metrics.render(await health.gauges(services))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    routes: list[BaseRoute] = []
    if settings.graphiql:
        assets = files("api") / "static" / "graphiql"
        routes.append(Mount("/graphiql/static", StaticFiles(directory=str(assets))))

    graphql_route = Route("/graphql", graphql, methods=["GET", "POST"])
    app = Starlette(
        routes=[
            # The busiest routes first: Starlette tries them in order.
            graphql_route,
            *rest_routes.ROUTES,
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
            rest_routes.OPENAPI_ROUTE,
            *routes,
        ],
        middleware=[
            Middleware(
                EdgeMiddleware,
                services=services,
                metrics=metrics,
                limit=settings.max_body_bytes,
                body_timeout=settings.body_timeout_seconds,
                too_large=_too_large,
            ),
            Middleware(DirectRoutes, routes=[graphql_route, rest_routes.ME_ROUTE]),
        ],
        lifespan=lifespan,
        exception_handlers={Unavailable: _on_unavailable},
    )
    app.state.services = services
    return app
