"""What the benchmark's baselines share: Amend's token check and its verified-token cache, the
session check, and the JSON Amend answers (its dates formatted by Amend's own `iso_seconds`),
written plainly (no services, no SQLAlchemy)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.core.clock import iso_seconds
from api.core.errors import AmendError
from api.security.tokens import Claims, TokenService

SESSION_PREFIX = "signin_"
USER_PREFIX = "user_"
AUDIT_FIELDS = '["first_name"]'


class Unauthorized(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TokenCache:
    """Amend's own token check and verified-token cache (`TokenService.decode`: HS256 pinned,
    the same required claims and issuer, a token that verified recently not verified again),
    behind the bearer scheme."""

    def __init__(self, secret: str, issuer: str) -> None:
        self._service = TokenService(secret, issuer=issuer)

    def decode(self, authorization: str) -> Claims:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("MISSING_TOKEN")
        try:
            return self._service.decode(token)
        except AmendError as error:
            raise Unauthorized(error.reason.value) from None


def check_session(
    row: Any,
    claims: Claims,
    *,
    revoked_at: Any,
    expires_at: Any,
    project_id: Any,
    unique_id: Any,
) -> None:
    """Amend's checks of the session row read for every request."""
    if row is None:
        raise Unauthorized("SESSION_REVOKED")
    if project_id != claims.project_id or unique_id != claims.unique_id:
        raise Unauthorized("USER_NOT_FOUND")
    if revoked_at is not None:
        raise Unauthorized("SESSION_REVOKED")
    if expires_at <= int(time.time() * 1000):
        raise Unauthorized("TOKEN_EXPIRED")


def json_response(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def parse_first_name(raw: bytes) -> str | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = body.get("first_name") if isinstance(body, dict) else None
    return value if isinstance(value, str) and len(value) <= 100 else None


def rest_user(user: dict[str, Any]) -> dict[str, Any]:
    """A user as REST answers it."""
    return {
        "id": USER_PREFIX + user["unique_id"],
        "first_name": user["first_name"],
        "last_name": user["last_name"],
        "username": user["username"],
        "email": user["email"],
        "phone_number": user["phone_number"],
        "image_url": user["image_url"],
        "two_factor_enabled": bool(user["two_factor_enabled"]),
        "email_verified": bool(user["email_verified"]),
        "phone_verified": bool(user["phone_verified"]),
        "data": user["data"],
        "version": user["version"],
        "created_at": iso_seconds(user["created_at"]),
        "updated_at": iso_seconds(user["updated_at"]),
    }


def envelope(
    data: dict[str, Any],
    unique_id: str,
    session_hex: str,
    live: list[Any],
    attempts: list[Any],
) -> dict[str, Any]:
    """REST's answer to a signed-in change: the user and the caller's session envelope
    (`live`: session rows, id and created_at first and third; `attempts`: attempt rows in
    SELECT_ATTEMPTS' column order)."""
    user_id = USER_PREFIX + unique_id

    def signin(row: Any) -> dict[str, Any]:
        return {
            "id": SESSION_PREFIX + row[0],
            "user_id": user_id,
            "created_at": iso_seconds(row[2]),
        }

    def attempt(row: Any) -> dict[str, Any]:
        return {
            "id": str(row[0]),
            "identifier": row[4],
            "succeeded": bool(row[6]),
            "reason": row[7],
            "created_at": iso_seconds(row[8]),
        }

    signins = [signin(r) for r in live]
    return {
        "status": 200,
        "message": "",
        "data": data,
        "session": {
            "signin_attempts": [attempt(r) for r in attempts if r[3] != "signup"],
            "signins": signins,
            "signup_attempts": [attempt(r) for r in attempts if r[3] == "signup"],
            "active_signin": next((s for s in signins if s["id"][7:] == session_hex), None),
        },
        "errors": [],
    }


def baseline_app(
    me: Callable[[Request], Awaitable[Response]], lifespan: Callable[[Starlette], Any]
) -> Starlette:
    """`GET`/`PATCH /me` and the health check the benchmark waits for."""

    async def healthz(_request: Request) -> Response:
        return json_response(200, {"status": "ok"})

    return Starlette(
        routes=[
            Route("/me", me, methods=["GET", "PATCH"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
