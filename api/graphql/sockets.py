"""`graphql-transport-ws` as the reference `graphql-ws` client expects it.

Every message is one JSON object in a *text* frame (the protocol's messages are text; the
reference client closes with 4004 on anything else), and a `connection_init` whose token is
invalid, expired or revoked is refused with `4403 Forbidden` rather than acknowledged.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected

from api.core.errors import AmendError, Reason, Unavailable
from api.graphql.context import Context
from api.services import accounts

# What a bad token is refused for; anything else (an origin the project does not list, no
# token at all) is the subscription's to report, as for every request.
_BAD_TOKEN = frozenset(
    {Reason.INVALID_TOKEN, Reason.SESSION_REVOKED, Reason.TOKEN_EXPIRED, Reason.USER_NOT_FOUND}
)


class TextFrames(ASGIWebSocketAdapter):
    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_text(orjson.dumps(message).decode())
        except WebSocketDisconnect as exc:
            raise WebSocketDisconnected from exc


async def check_connection(context: Context) -> None:
    """Refuse (4403) a `connection_init` presenting a token that does not sign anyone in: in
    its payload (`{"token": "…"}`), else the handshake's cookie or header."""
    auth = context.auth.fresh()
    params = context.connection_params
    if isinstance(params, dict) and "token" in params:
        token = params["token"]
        if not isinstance(token, str) or not token:
            raise ConnectionRejectionError
        auth = auth.with_token(token)
    if auth.credentials.token is None:
        return
    try:
        await accounts.me(auth)
    except AmendError as error:
        if error.reason in _BAD_TOKEN:
            raise ConnectionRejectionError from None
    except Unavailable:
        return  # not the token's fault: the subscription answers SERVICE_UNAVAILABLE
