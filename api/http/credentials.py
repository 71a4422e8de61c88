"""Read what a request presents into `Credentials`; decide nothing."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection
from strawberry.http.websocket_origin import is_same_origin

from api.config import Settings
from api.services.container import Services
from api.services.context import Credentials, RequestContext

# The scope key of a request's `CorsSlot`, set by the edge for requests with an Origin.
CORS_SLOT = "amend.cors"


class CorsSlot:
    """Where a request's auth context is left for the edge, which sends the CORS headers
    that the context's own project allows once the route has answered."""

    __slots__ = ("context",)

    def __init__(self) -> None:
        self.context: RequestContext | None = None


def request_context(conn: HTTPConnection, services: Services) -> RequestContext:
    """The request's auth context (one per request), registered for the CORS decision."""
    context = RequestContext(services, credentials_of(conn, services.settings))
    slot = conn.scope.get(CORS_SLOT)
    if isinstance(slot, CorsSlot):
        slot.context = context
    return context


def _bearer(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    # A non-Bearer Authorization header is still "present": it decides, and fails.
    return value.strip()


def client_ip(conn: HTTPConnection, trusted_proxies: frozenset[str]) -> str | None:
    # `conn.client`, without building its `Address` (twice).
    client = conn.scope.get("client")
    peer: str | None = client[0] if client else None
    if peer is None or peer not in trusted_proxies:
        return peer
    forwarded = conn.headers.get("x-forwarded-for")
    if not forwarded:
        return peer
    # Walk from the right: the first address not added by a trusted proxy is the client.
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if getattr(address, "scope_id", None) is not None:
            # "fe80::1%<zone>": a zone is local to one host, and of unbounded length.
            return peer
        if hop not in trusted_proxies:
            return hop
    return peer


_READ = frozenset(
    {b"authorization", b"x-access-token", b"x-api-key", b"x-master-key", b"origin", b"user-agent"}
)


def credentials_of(conn: HTTPConnection, settings: Settings) -> Credentials:
    # One pass over the raw headers (ASGI names are lowercase; the first occurrence counts,
    # as with Starlette's `Headers.get`), and the query string parsed only when there is one.
    h: dict[bytes, str] = {}
    for name, value in conn.scope["headers"]:
        if name in _READ and name not in h:
            h[name] = value.decode("latin-1")
    q = conn.query_params if conn.scope.get("query_string") else {}
    # Bearer, then X-Access-Token, then the cookie: the first one present decides.
    if (auth := h.get(b"authorization")) is not None:
        token: str | None = _bearer(auth)
    elif (access := h.get(b"x-access-token")) is not None:
        token = access.strip()
    else:
        token = conn.cookies.get(settings.cookie_name)
    return Credentials(
        token=token or None,
        api_key=q.get("key") or h.get(b"x-api-key") or None,
        master_key=q.get("masterKey") or h.get(b"x-master-key") or None,
        origin=h.get(b"origin"),
        ip=client_ip(conn, settings.trusted_proxies),
        user_agent=h.get(b"user-agent"),
        cross_origin_socket=conn.scope["type"] == "websocket"
        and (origin := h.get(b"origin")) is not None
        and not is_same_origin(origin, conn.headers.get("host")),
    )
