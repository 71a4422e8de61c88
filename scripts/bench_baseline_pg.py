"""The floor `scripts/bench --database postgres` compares Amend with: the same work on
PostgreSQL with the best plain techniques.

The same routes, statements and answers as `bench_baseline.py` (the SQLite floor), through
`asyncpg` directly: a pool of `BENCH_POOL` connections (Amend's default pool size), every
statement a server-side prepared statement (asyncpg's per-connection statement cache), the
verified-token cache, the session check, and `UPDATE … RETURNING` plus the audit `INSERT` in
one transaction (`PATCH /me`), then REST's envelope reads after it. Like Amend's pool, the
pool hands a connection back as it is: neither sets any session state, so asyncpg's default
reset on release (a round trip of `pg_advisory_unlock_all()`, `CLOSE ALL`, `UNLISTEN *` and
`RESET ALL` per request) would be work Amend does not do.

Run by `scripts/bench` as `uvicorn --app-dir scripts bench_baseline_pg:create_app --factory`
with `BENCH_DSN`, `BENCH_SECRET`, `BENCH_ISSUER` (and optionally `BENCH_POOL`) set.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from bench_baseline import (
    EXPIRES_AT,
    INSERT_AUDIT,
    PROJECT_ID,
    REVOKED_AT,
    SELECT_ATTEMPTS,
    SELECT_CALLER,
    SELECT_SESSIONS,
    SESSION_ID,
    UNIQUE_ID,
    UPDATE_FIRST_NAME,
    USER_AT,
    VERSION,
    user_row,
)
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


def numbered(sql: str) -> str:
    """SQLite's `?` placeholders as PostgreSQL's `$1, $2, …`."""
    parts = sql.split("?")
    out = [parts[0]]
    for i, part in enumerate(parts[1:], 1):
        out.append(f"${i}{part}")
    return "".join(out)


CALLER = numbered(SELECT_CALLER)
UPDATE = numbered(UPDATE_FIRST_NAME)
AUDIT = numbered(INSERT_AUDIT)
SESSIONS = numbered(SELECT_SESSIONS)
ATTEMPTS = numbered(SELECT_ATTEMPTS)


async def _as_it_is(_conn: asyncpg.Connection) -> None:
    """A released connection needs no reset: the baseline changes no session state."""


def create_app() -> Starlette:
    tokens = TokenCache(os.environ["BENCH_SECRET"], os.environ.get("BENCH_ISSUER", "amend"))
    pool_size = int(os.environ.get("BENCH_POOL", "10"))
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            os.environ["BENCH_DSN"], min_size=pool_size, max_size=pool_size, reset=_as_it_is
        )
        state["pool"] = pool
        try:
            yield
        finally:
            await pool.close()

    async def me(request: Request) -> Response:
        first_name = None
        if request.method != "GET":
            first_name = parse_first_name(await request.body())
            if first_name is None:
                return json_response(400, {"error": "INVALID_FIELD"})
        pool: asyncpg.Pool = state["pool"]
        async with pool.acquire() as conn:
            try:
                claims = tokens.decode(request.headers.get("authorization", ""))
                row = await conn.fetchrow(CALLER, claims.session_id)
                check_session(
                    row,
                    claims,
                    revoked_at=row and row[REVOKED_AT],
                    expires_at=row and row[EXPIRES_AT],
                    project_id=row and row[PROJECT_ID],
                    unique_id=row and row[UNIQUE_ID],
                )
            except Unauthorized as error:
                return json_response(401, {"error": error.code})
            if first_name is None:
                return json_response(200, {"data": rest_user(user_row(row[USER_AT:]))})
            now = int(time.time() * 1000)
            ip = request.client.host if request.client else None
            async with conn.transaction():
                updated = await conn.fetchrow(UPDATE, first_name, now, row[USER_AT], row[VERSION])
                if updated is not None:
                    await conn.execute(AUDIT, row[PROJECT_ID], row[USER_AT], AUDIT_FIELDS, ip, now)
            if updated is None:
                return json_response(409, {"error": "VERSION_CONFLICT"})
            data = rest_user(user_row(updated))
            if request.query_params.get("plain"):
                return json_response(200, {"data": data})
            live = await conn.fetch(SESSIONS, row[USER_AT], now)
            attempts = await conn.fetch(ATTEMPTS, row[USER_AT], row[USER_AT])
        return json_response(200, envelope(data, row[UNIQUE_ID], row[SESSION_ID], live, attempts))

    return baseline_app(me, lifespan)
