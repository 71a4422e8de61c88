"""`last_seen_at` is recorded off the request path, at most once a minute per session, once a
second for all sessions used meanwhile, in small transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import httpx

from api.services import activity
from api.services.activity import SessionActivity
from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import ME, gql, sign_up


def _last_seen(db: TestDB) -> list[int]:
    return [row[0] for row in db.sql("SELECT last_seen_at FROM sessions ORDER BY created_at")]


async def test_a_request_records_an_old_session_use_in_the_next_batch(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    db.sql("UPDATE sessions SET last_seen_at = last_seen_at - 3600000")
    [old] = _last_seen(db)
    body = await gql(client, ME, headers={"Authorization": f"Bearer {account.token}"})
    assert "errors" not in body
    assert _last_seen(db) == [old]  # not written by the request itself
    await services.activity.flush()
    [seen] = _last_seen(db)
    assert seen >= old + 3_600_000


async def test_a_recent_use_is_not_written_again(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    [first] = _last_seen(db)
    for _ in range(3):
        await gql(client, ME, headers={"Authorization": f"Bearer {account.token}"})
    assert services.activity._due == {}
    await services.activity.flush()
    assert _last_seen(db) == [first]


async def test_pending_uses_are_written_on_close_and_by_the_timer(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    db.sql("UPDATE sessions SET last_seen_at = 1")
    await gql(client, ME, headers={"Authorization": f"Bearer {account.token}"})
    assert services.activity._flusher is not None  # the one-second timer is running
    await services.activity.close()
    [seen] = _last_seen(db)
    assert seen > 1
    assert services.activity._flusher is None


async def test_the_timer_writes_the_batch_without_a_request(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    db.sql("UPDATE sessions SET last_seen_at = 1")
    await gql(client, ME, headers={"Authorization": f"Bearer {account.token}"})
    flusher = services.activity._flusher
    assert flusher is not None
    await flusher
    [seen] = _last_seen(db)
    assert seen > 1


async def test_last_seen_never_moves_back(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key)
    [row] = db.sql("SELECT id, last_seen_at FROM sessions")
    session_hex, now = row
    services.activity._due[session_hex] = now - 10
    await services.activity.flush()
    assert _last_seen(db) == [now]


class _CountingDB:
    """Records the statements of each write transaction."""

    def __init__(self) -> None:
        self.transactions: list[list[dict[str, Any]]] = []

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Any]:
        statements: list[dict[str, Any]] = []
        db = self

        class _Tx:
            async def run(self, _stmt: object, params: dict[str, Any]) -> int:
                statements.append(params)
                return 1

        yield _Tx()
        db.transactions.append(statements)


async def test_many_due_sessions_are_written_in_small_transactions() -> None:
    db = _CountingDB()
    recorder = SessionActivity(cast(Any, db))
    due = 2 * activity.FLUSH_BATCH + 7
    for i in range(due):
        recorder._due[f"{i:032x}"] = 1_000 + i
    await recorder.flush()
    assert [len(t) for t in db.transactions] == [activity.FLUSH_BATCH, activity.FLUSH_BATCH, 7]
    written = {p["session_hex"]: p["now"] for t in db.transactions for p in t}
    assert written == {f"{i:032x}": 1_000 + i for i in range(due)}
