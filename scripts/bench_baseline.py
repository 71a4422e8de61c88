"""The floor `scripts/bench` compares Amend with: the same work done as plainly as possible.

A minimal Starlette app over the same SQLite file, with raw aiosqlite (no SQLAlchemy, no
GraphQL, no services): every request verifies the bearer token exactly as Amend does (PyJWT,
HS256 pinned, the same required claims and issuer, audience checked against the session's
project), reads the session joined with its user and endpoint in one SELECT, checks that the
session is live, and then

- `PATCH /me` (body `{"first_name": "…"}`) runs one
  `UPDATE users SET first_name=?, version=version+1, updated_at=? … RETURNING …`;
- `GET /me` returns the user as read.

Both answer JSON. Run by `scripts/bench` as
`uvicorn --app-dir scripts bench_baseline:create_app --factory` (one worker, pinned like
Amend) with `BENCH_DB` (the SQLite file), `BENCH_SECRET` and `BENCH_ISSUER` in the
environment. Not part of the service: nothing under `api/` imports it.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiosqlite
import jwt
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "sub", "sid"]
SESSION_PREFIX = "signin_"

SELECT_CALLER = """
SELECT s.id, s.expires_at, s.revoked_at,
       u.pk, u.unique_id, u.username, u.email, u.first_name, u.last_name, u.version,
       u.created_at, u.updated_at, e.project_id
FROM sessions AS s
JOIN users AS u ON u.pk = s.user_pk
JOIN endpoints AS e ON e.id = u.endpoint_id
WHERE s.id = ?
"""

UPDATE_FIRST_NAME = """
UPDATE users SET first_name = ?, version = version + 1, updated_at = ?
WHERE pk = ? AND version = ?
RETURNING pk, unique_id, username, email, first_name, last_name, version, created_at, updated_at
"""

USER_KEYS = (
    "pk",
    "unique_id",
    "username",
    "email",
    "first_name",
    "last_name",
    "version",
    "created_at",
    "updated_at",
)


def _json(status: int, body: Any) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _user(row: Any, offset: int = 0) -> dict[str, Any]:
    return {key: row[offset + i] for i, key in enumerate(USER_KEYS)}


def create_app() -> Starlette:
    db_path = os.environ["BENCH_DB"]
    secret = os.environ["BENCH_SECRET"]
    issuer = os.environ.get("BENCH_ISSUER", "amend")
    state: dict[str, aiosqlite.Connection] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        conn = await aiosqlite.connect(db_path, isolation_level=None)  # autocommit
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA busy_timeout=5000",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            await conn.execute(pragma)
        state["db"] = conn
        try:
            yield
        finally:
            await conn.close()

    async def caller(request: Request) -> tuple[Any, Response | None]:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None, _json(401, {"error": "MISSING_TOKEN"})
        try:
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                issuer=issuer,
                options={"require": REQUIRED_CLAIMS, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return None, _json(401, {"error": "INVALID_TOKEN"})
        sid = claims.get("sid")
        if not isinstance(sid, str) or not sid.startswith(SESSION_PREFIX):
            return None, _json(401, {"error": "INVALID_TOKEN"})
        async with state["db"].execute(SELECT_CALLER, (sid[len(SESSION_PREFIX) :],)) as cur:
            row = await cur.fetchone()
        now = int(time.time() * 1000)
        if row is None or row[2] is not None or row[1] <= now:
            return None, _json(401, {"error": "SESSION_REVOKED"})
        if row[12] != claims.get("aud") or row[4] != claims.get("sub"):
            return None, _json(401, {"error": "USER_NOT_FOUND"})
        return row, None

    async def me(request: Request) -> Response:
        row, error = await caller(request)
        if error is not None:
            return error
        if request.method == "GET":
            return _json(200, {"data": _user(row, offset=3)})
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _json(400, {"error": "INVALID_JSON"})
        first_name = body.get("first_name") if isinstance(body, dict) else None
        if not isinstance(first_name, str) or len(first_name) > 100:
            return _json(400, {"error": "INVALID_FIELD"})
        params = (first_name, int(time.time() * 1000), row[3], row[9])
        async with state["db"].execute(UPDATE_FIRST_NAME, params) as cur:
            updated = await cur.fetchone()
        if updated is None:
            return _json(409, {"error": "VERSION_CONFLICT"})
        return _json(200, {"data": _user(updated)})

    async def healthz(_request: Request) -> Response:
        return _json(200, {"status": "ok"})

    return Starlette(
        routes=[
            Route("/me", me, methods=["GET", "PATCH"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
