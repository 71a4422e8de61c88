"""`last_seen_at` is recorded off the request path, at most once a minute per session, in one
write per second for all sessions used meanwhile."""

from __future__ import annotations

import httpx

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
