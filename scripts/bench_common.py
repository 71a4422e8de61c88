"""What the benchmark's baselines share: Amend's token check and its verified-token cache, the
session check, and the JSON Amend answers, written plainly (no services, no SQLAlchemy)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from starlette.responses import Response

REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "sid"]
SESSION_PREFIX = "signin_"
USER_PREFIX = "user_"
CACHE_SIZE = 16_384  # as api/security/tokens.py
CACHE_TTL_S = 300.0
AUDIT_FIELDS = '["first_name"]'


class Unauthorized(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True, slots=True)
class Claims:
    project_id: str
    unique_id: str
    session_hex: str
    expires_at: float


class TokenCache:
    """Amend's token check: PyJWT with HS256 pinned, the same required claims and issuer, and a
    token that verified recently not verified again (its expiry still is)."""

    def __init__(self, secret: str, issuer: str) -> None:
        self._secret = secret
        self._issuer = issuer
        self._verified: dict[str, tuple[Claims, float]] = {}

    def decode(self, authorization: str) -> Claims:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("MISSING_TOKEN")
        now = time.time()
        hit = self._verified.get(token)
        if hit is not None:
            claims, until = hit
            if now < until and now < claims.expires_at:
                return claims
            del self._verified[token]
        claims = self._verify(token)
        if len(self._verified) >= CACHE_SIZE:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = (claims, now + CACHE_TTL_S)
        return claims

    def _verify(self, token: str) -> Claims:
        try:
            payload = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=self._issuer,
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            raise Unauthorized("INVALID_TOKEN") from None
        sid, aud, sub = payload.get("sid"), payload.get("aud"), payload.get("sub")
        if not (isinstance(sid, str) and sid.startswith(SESSION_PREFIX)):
            raise Unauthorized("INVALID_TOKEN")
        if not (isinstance(aud, str) and isinstance(sub, str)):
            raise Unauthorized("INVALID_TOKEN")
        return Claims(aud, sub, sid[len(SESSION_PREFIX) :], float(payload["exp"]))


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


def iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


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
        "created_at": iso(user["created_at"]),
        "updated_at": iso(user["updated_at"]),
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
        return {"id": SESSION_PREFIX + row[0], "user_id": user_id, "created_at": iso(row[2])}

    def attempt(row: Any) -> dict[str, Any]:
        return {
            "id": str(row[0]),
            "identifier": row[4],
            "succeeded": bool(row[6]),
            "reason": row[7],
            "created_at": iso(row[8]),
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
