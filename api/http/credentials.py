"""Read what a request presents into `Credentials`; decide nothing."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

from api.config import Settings
from api.services.context import Credentials


def _bearer(value: str) -> str:
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip()
    # A non-Bearer Authorization header is still "present": it decides, and fails.
    return value.strip()


def token_of(conn: HTTPConnection, cookie_name: str) -> str | None:
    """Bearer, then X-Access-Token, then the cookie: the first one present decides."""
    headers = conn.headers
    if (auth := headers.get("authorization")) is not None:
        return _bearer(auth)
    if (access := headers.get("x-access-token")) is not None:
        return access.strip()
    return conn.cookies.get(cookie_name)


def client_ip(conn: HTTPConnection, trusted_proxies: frozenset[str]) -> str | None:
    peer = conn.client.host if conn.client else None
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


def credentials_of(conn: HTTPConnection, settings: Settings) -> Credentials:
    q = conn.query_params
    h = conn.headers
    return Credentials(
        token=token_of(conn, settings.cookie_name) or None,
        api_key=q.get("key") or h.get("x-api-key") or None,
        master_key=q.get("masterKey") or h.get("x-master-key") or None,
        origin=h.get("origin"),
        ip=client_ip(conn, settings.trusted_proxies),
        user_agent=h.get("user-agent"),
    )
