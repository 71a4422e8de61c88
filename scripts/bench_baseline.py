"""The floor `scripts/bench` compares Amend with on SQLite: the same work, done plainly.

A minimal Starlette app over the same SQLite file that runs the statements Amend runs, the way
Amend runs them, and nothing else (no SQLAlchemy, no GraphQL, no services):

- the standard `sqlite3` module on the event loop (WAL, `synchronous=NORMAL`, foreign keys on),
  one connection, as Amend's SQLite engine reads and writes on its writer connection;
- the bearer token verified with PyJWT exactly as Amend does (HS256 pinned, the same required
  claims and issuer), through the same verified-token cache (a token that verified within
  5 minutes is not verified again, its expiry is);
- the session check: Amend's one SELECT of the session joined with its user, endpoint and
  project, then revoked, expired, audience and subject checked;
- `PATCH /me` (body `{"first_name": "…"}`): `BEGIN IMMEDIATE`, Amend's version-checked
  `UPDATE users … RETURNING …`, the audit row `INSERT INTO audit_events …`, `COMMIT`, then the
  two reads of REST's session envelope (live sessions, recent attempts), answered in the same
  envelope shape;
- `PATCH /me?plain=1`: the same transaction without the envelope reads (what GraphQL
  `updateMe` and the REST record update do);
- `GET /me`: the user as the session check read it (what GraphQL `me` does).

Both answer JSON. Run by `scripts/bench` as
`uvicorn --app-dir scripts bench_baseline:create_app --factory` (one worker, pinned like
Amend) with `BENCH_DB` (the SQLite file), `BENCH_SECRET` and `BENCH_ISSUER` in the
environment. Not part of the service: nothing under `api/` imports it.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from bench_common import (
    AUDIT_FIELDS,
    TokenCache,
    Unauthorized,
    baseline_app,
    check_session,
    envelope,
    json_response,
    parse_first_name,
    rest_user,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

SELECT_CALLER = """
SELECT sessions.id, sessions.user_pk, sessions.created_at, sessions.expires_at,
       sessions.last_seen_at, sessions.revoked_at, sessions.user_agent, sessions.ip,
       users.pk, users.unique_id, users.endpoint_id, users.username, users.email,
       users.first_name, users.last_name, users.phone_number, users.image_url,
       users.two_factor_enabled, users.email_verified, users.phone_verified, users.data,
       users.version, users.created_at, users.updated_at, users.password_hash,
       endpoints.name, projects.id, projects.name, projects."plan", projects.allow_no_origin
FROM sessions JOIN users ON users.pk = sessions.user_pk
JOIN endpoints ON endpoints.id = users.endpoint_id
JOIN projects ON projects.id = endpoints.project_id
WHERE sessions.id = ?
"""

UPDATE_FIRST_NAME = """
UPDATE users SET first_name = ?, version = (users.version + 1), updated_at = ?
WHERE users.pk = ? AND users.version = ?
RETURNING pk, unique_id, endpoint_id, username, email, first_name, last_name, phone_number,
          image_url, two_factor_enabled, email_verified, phone_verified, data, version,
          created_at, updated_at, password_hash
"""

INSERT_AUDIT = """
INSERT INTO audit_events (project_id, user_pk, action, fields, strategy, actor, ip, at)
VALUES (?, ?, 'update_me', ?, NULL, 'user', ?, ?)
"""

SELECT_SESSIONS = """
SELECT sessions.id, sessions.user_pk, sessions.created_at, sessions.expires_at,
       sessions.last_seen_at, sessions.revoked_at, sessions.user_agent, sessions.ip
FROM sessions
WHERE sessions.user_pk = ? AND sessions.revoked_at IS NULL AND sessions.expires_at > ?
ORDER BY sessions.created_at DESC, sessions.id LIMIT 100 OFFSET 0
"""

_ATTEMPT_COLUMNS = "id, endpoint_id, user_pk, kind, identifier, ip, succeeded, reason, created_at"
SELECT_ATTEMPTS = f"""
SELECT * FROM (SELECT {_ATTEMPT_COLUMNS} FROM signin_attempts
  WHERE user_pk = ? AND (kind = 'signin' OR kind = 'reauth') ORDER BY id DESC LIMIT 20) AS signins
UNION ALL
SELECT * FROM (SELECT {_ATTEMPT_COLUMNS} FROM signin_attempts
  WHERE user_pk = ? AND kind = 'signup' ORDER BY id DESC LIMIT 20) AS signups
"""

USER_KEYS = (
    "pk",
    "unique_id",
    "endpoint_id",
    "username",
    "email",
    "first_name",
    "last_name",
    "phone_number",
    "image_url",
    "two_factor_enabled",
    "email_verified",
    "phone_verified",
    "data",
    "version",
    "created_at",
    "updated_at",
)

# Positions in SELECT_CALLER's row.
USER_AT = 8  # users.pk onwards, in UPDATE_FIRST_NAME's RETURNING order up to password_hash
SESSION_ID, EXPIRES_AT, REVOKED_AT = 0, 3, 5
UNIQUE_ID, VERSION, PROJECT_ID = 9, 21, 26


def create_app() -> Starlette:
    db_path = os.environ["BENCH_DB"]
    tokens = TokenCache(os.environ["BENCH_SECRET"], os.environ.get("BENCH_ISSUER", "amend"))
    state: dict[str, sqlite3.Connection] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        conn = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA foreign_keys=ON",
            "PRAGMA synchronous=NORMAL",
        ):
            conn.execute(pragma)
        state["db"] = conn
        try:
            yield
        finally:
            conn.close()

    def caller(request: Request) -> tuple[Any, ...]:
        claims = tokens.decode(request.headers.get("authorization", ""))
        row = state["db"].execute(SELECT_CALLER, (claims.session_id,)).fetchone()
        check_session(
            row,
            claims,
            revoked_at=row and row[REVOKED_AT],
            expires_at=row and row[EXPIRES_AT],
            project_id=row and row[PROJECT_ID],
            unique_id=row and row[UNIQUE_ID],
        )
        return tuple(row)

    async def me(request: Request) -> Response:
        try:
            row = caller(request)
        except Unauthorized as error:
            return json_response(401, {"error": error.code})
        user = row[USER_AT : USER_AT + 17]
        if request.method == "GET":
            return json_response(200, {"data": rest_user(user_row(user))})
        first_name = parse_first_name(await request.body())
        if first_name is None:
            return json_response(400, {"error": "INVALID_FIELD"})
        db = state["db"]
        now = int(time.time() * 1000)
        db.execute("BEGIN IMMEDIATE")
        try:
            updated = db.execute(
                UPDATE_FIRST_NAME, (first_name, now, row[USER_AT], row[VERSION])
            ).fetchone()
            if updated is not None:
                ip = request.client.host if request.client else None
                db.execute(INSERT_AUDIT, (row[PROJECT_ID], row[USER_AT], AUDIT_FIELDS, ip, now))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        if updated is None:
            return json_response(409, {"error": "VERSION_CONFLICT"})
        data = rest_user(user_row(updated))
        if request.query_params.get("plain"):
            return json_response(200, {"data": data})
        live = db.execute(SELECT_SESSIONS, (row[USER_AT], now)).fetchall()
        attempts = db.execute(SELECT_ATTEMPTS, (row[USER_AT], row[USER_AT])).fetchall()
        return json_response(200, envelope(data, row[UNIQUE_ID], row[SESSION_ID], live, attempts))

    return baseline_app(me, lifespan)


def user_row(values: Any) -> dict[str, Any]:
    user = dict(zip(USER_KEYS, values, strict=False))
    user["data"] = orjson.loads(user["data"]) if isinstance(user["data"], str) else user["data"]
    return user
