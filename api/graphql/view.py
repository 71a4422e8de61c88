"""The ASGI GraphQL endpoint: builds the typed context once per request."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from api.core.errors import Unavailable
from api.graphql.context import Context
from api.graphql.schema import build_schema
from api.http.credentials import credentials_of
from api.services.container import Services
from api.services.context import RequestContext
from api.services.origins import origin_listed

_ORIGIN_LISTED = "amend.origin_listed"

# A client watches its own account: a handful of streams per socket is plenty.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 5


class AmendGraphQL(GraphQL[Context, None]):
    def __init__(self, services: Services) -> None:
        settings = services.settings
        super().__init__(
            build_schema(
                introspection=settings.introspection,
                field_suggestions=settings.dev,
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
            ),
            graphql_ide="graphiql" if settings.graphiql else None,
            # Queries may use GET (cacheable, idempotent); Strawberry refuses mutations there.
            allow_queries_via_get=True,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=MAX_SUBSCRIPTIONS_PER_CONNECTION,
            keep_alive=True,
            keep_alive_interval=15,
            multipart_uploads_enabled=False,
        )
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # Browsers send cookies on cross-site WebSocket handshakes that CORS never checks:
            # only origins some project lists may open one. The subscription then checks the
            # caller's own project's list, as for every request.
            origin = Headers(scope=scope).get("origin")
            listed = False
            if origin is not None:
                try:
                    listed = await origin_listed(self.services, origin, None)
                except Unavailable:
                    listed = False
            scope = {**scope, _ORIGIN_LISTED: listed}
            await super().__call__(scope, receive, send)
            return
        # Only JSON bodies: a cross-site "simple" request (text/plain, form encodings) can then
        # never reach a mutation, whatever the browser's CORS handling.
        if scope["type"] == "http" and scope["method"] == "POST":
            content_type = Headers(scope=scope).get("content-type", "")
            if content_type.split(";", 1)[0].strip().lower() != "application/json":
                await _unsupported_media_type(scope, receive, send)
                return
            # Media types are case-insensitive; Strawberry compares them as written.
            headers = [(k, v.lower() if k == b"content-type" else v) for k, v in scope["headers"]]
            scope = {**scope, "headers": headers}
        await super().__call__(scope, receive, send)

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        return bool(request.scope.get(_ORIGIN_LISTED))

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own page: the playground's assets are served by Amend itself (no CDN).
        page = (files("api") / "static" / "graphiql.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        creds = credentials_of(request, self.services.settings)
        return Context(
            request=request, response=response, auth=RequestContext(self.services, creds)
        )

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> Any:
        # Strawberry calls `.get()` on whatever JSON the body holds: a body of `"text"`, `1`
        # or `null` would end in a 500. A JSON object starts with "{" (a list, refused as a
        # batch, with "["); anything else is a client error. The body is buffered already.
        if request.method == "POST":
            content_type, _ = parse_content_type(request.content_type or "")
            if "application/json" in content_type:
                body = (await request.get_body()).lstrip(b" \t\r\n")
                if body[:1] not in (b"{", b"["):
                    raise HTTPException(400, "The request body must be a JSON object.")
        return await super().parse_http_body(request)

    def decode_json(self, data: str | bytes) -> Any:
        # orjson refuses NaN and Infinity, which JSON does not have.
        return orjson.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


async def _unsupported_media_type(scope: Scope, receive: Receive, send: Send) -> None:
    body = {
        "errors": [
            {
                "message": "POST /graphql takes application/json bodies only",
                "extensions": {"code": "BAD_REQUEST", "reason": "UNSUPPORTED_CONTENT_TYPE"},
            }
        ]
    }
    await JSONResponse(body, status_code=415)(scope, receive, send)
