from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from api.config import Settings
from api.services.context import RequestContext


@dataclass
class Context:
    """Typed per-request context: resolvers read it via `strawberry.Info[Context, None]`."""

    request: Request | WebSocket
    response: Response | WebSocket
    auth: RequestContext
    # Set by Strawberry from a WebSocket's `connection_init` payload.
    connection_params: object = None

    @property
    def settings(self) -> Settings:
        return self.auth.services.settings
