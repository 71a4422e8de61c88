"""The ASGI GraphQL endpoint: builds the typed context once per request."""

from __future__ import annotations

from collections.abc import Sequence
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
from strawberry.http import GraphQLHTTPResponse
from strawberry.http.parse_content_type import parse_content_type
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types import ExecutionResult as StrawberryResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from api.core import jsontext
from api.core.errors import AmendError, Reason, Unavailable
from api.graphql.context import Context
from api.graphql.documents import Documents
from api.graphql.errors import error_response
from api.graphql.media import (
    GRAPHQL_RESPONSE_TYPE,
    JSON_TYPE,
    failed_before_execution,
    prefers_graphql_response,
)
from api.graphql.schema import AmendSchema, ExtensionFactory, build_schema
from api.graphql.sockets import TextFrames, check_connection
from api.http.credentials import request_context
from api.http.middleware import media_type, raw_header, replaying
from api.services.container import Services
from api.services.origins import origin_listed

_ORIGIN_LISTED = "amend.origin_listed"
_REQUEST_KEYS = frozenset({"query", "variables", "operationName"})
# Set on the scope by `process_result` for the pipeline's status and media type.
_FAILED_EARLY = "amend.failed_before_execution"
_DIRECT_OPERATIONS = frozenset({OperationType.QUERY, OperationType.MUTATION})

# A client watches its own account: a handful of streams per socket is plenty.
MAX_SUBSCRIPTIONS_PER_CONNECTION = 5


class AmendGraphQL(GraphQL[Context, None]):
    websocket_adapter_class = TextFrames

    def __init__(self, services: Services, *, extensions: Sequence[ExtensionFactory] = ()) -> None:
        settings = services.settings
        super().__init__(
            build_schema(
                introspection=settings.introspection,
                field_suggestions=settings.dev,
                max_depth=settings.max_query_depth,
                max_aliases=settings.max_aliases,
                max_tokens=settings.max_tokens,
                extensions=extensions,
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
        self.schema: AmendSchema
        self.documents = Documents(
            self.schema, self.schema.validation_rules, max_tokens=self.schema.max_tokens
        )

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
            if media_type(scope) != "application/json":
                await _unsupported_media_type(scope, receive, send)
                return
            body = await _read_body(receive)
            if await self._run_known(scope, receive, send, body):
                return
            receive = replaying(body, receive)
            # Media types are case-insensitive; Strawberry compares them as written.
            raw = [(k, v.lower() if k == b"content-type" else v) for k, v in scope["headers"]]
            scope = {**scope, "headers": raw}
        if scope["type"] == "http":
            await self._pipeline(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def _pipeline(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Strawberry's pipeline. Its transport errors (a body that is not JSON, a batch, a
        mutation over GET…) are answered as GraphQL errors in JSON, with their status, where
        Strawberry answers plain text that GraphQL clients cannot read."""
        try:
            response = await self.run(Request(scope=scope, receive=receive))
        except HTTPException as error:
            body = {"errors": [{"message": error.reason, "extensions": {"code": "BAD_REQUEST"}}]}
            response = JSONResponse(body, status_code=error.status_code)
        if response.media_type == "application/json" and prefers_graphql_response(
            raw_header(scope, b"accept")
        ):
            response.headers["content-type"] = GRAPHQL_RESPONSE_TYPE.decode()
            if scope.get(_FAILED_EARLY) and response.status_code == 200:
                response.status_code = 400
        await response(scope, receive, send)

    async def _run_known(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> bool:
        """Execute a valid query or mutation directly (see `api.graphql.documents`); False
        leaves the request to Strawberry's pipeline."""
        raw_accept = raw_header(scope, b"accept")
        accept = (raw_accept or b"").lower()
        if b"multipart/mixed" in accept or b"text/event-stream" in accept:
            return False
        try:
            data = jsontext.loads(body)
        except ValueError:
            return False
        if not isinstance(data, dict) or not data.keys() <= _REQUEST_KEYS:
            return False
        query, variables = data.get("query"), data.get("variables")
        operation_name = data.get("operationName")
        if (
            not isinstance(query, str)
            or not (variables is None or isinstance(variables, dict))
            or not (operation_name is None or isinstance(operation_name, str))
        ):
            return False
        document = self.documents.get(query, operation_name)
        if document is None:
            return False
        request = Request(scope, receive)
        sub_response = SubResponse()
        context = self._context(request, sub_response)
        if self.schema.own_extension_only:
            result = await self.schema.execute_validated(
                document.node, variables, context, operation_name, plan=document.plan
            )
        else:
            # Strawberry's own execution, with every schema extension: the parser and
            # validation caches answer this text from memory.
            result = await self.schema.execute(
                query,
                variable_values=variables,
                context_value=context,
                operation_name=operation_name,
                allowed_operation_types=_DIRECT_OPERATIONS,
            )
        if result.errors or result.extensions:
            answer = await self.process_result(request, result)
        else:  # what `process_result` answers for data alone
            answer = {"data": result.data}
        early = bool(scope.get(_FAILED_EARLY))  # the variables did not coerce
        # What `create_response` builds, sent without a second Response object.
        body = orjson.dumps(answer)
        graphql_response = prefers_graphql_response(raw_accept)
        raw = [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", GRAPHQL_RESPONSE_TYPE if graphql_response else JSON_TYPE),
            *sub_response.raw_headers,
        ]
        status = sub_response.status_code or (400 if early and graphql_response else 200)
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        if sub_response.background is not None:
            await sub_response.background()
        return True

    async def process_result(
        self, request: Request, result: StrawberryResult
    ) -> GraphQLHTTPResponse:
        answer = await super().process_result(request, result)
        if failed_before_execution(result.data, result.errors):
            del answer["data"]
            request.scope[_FAILED_EARLY] = True
        return answer

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await check_connection(context)
        return UnsetType()

    def is_websocket_origin_allowed(self, request: WebSocket, origin: str) -> bool:
        return bool(request.scope.get(_ORIGIN_LISTED))

    async def render_graphql_ide(self, request: Request) -> Response:
        # Our own page: the playground's assets are served by Amend itself (no CDN).
        page = (files("api") / "static" / "graphiql.html").read_text(encoding="utf-8")
        return HTMLResponse(page)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return SubResponse()

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        return self._context(request, response)

    def _context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        return Context(
            request=request, response=response, auth=request_context(request, self.services)
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
        # NaN and Infinity are refused (JSON does not have them); big integers stay exact.
        return jsontext.loads(data)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


class SubResponse(Response):
    """Where resolvers set cookies, headers and a status for the answer, as on Strawberry's
    sub-response (a `Response` without status or headers); built without a Response's
    constructor, which renders a body and headers this one never sends."""

    def __init__(self) -> None:
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.raw_headers = []


async def _unsupported_media_type(scope: Scope, receive: Receive, send: Send) -> None:
    error = AmendError(
        Reason.UNSUPPORTED_CONTENT_TYPE, "POST /graphql takes application/json bodies only"
    )
    await error_response(error)(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    # The body-limit middleware has read (and bounded) it already: this joins its chunks.
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
