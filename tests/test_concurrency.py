"""Concurrent updates through HTTP: no lost update, exactly one winner per version."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import ProjectKeys
from tests.gql import RECORD, UPDATE_USER, gql, sign_up


async def test_concurrent_merges_lose_no_key(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    n = 50

    async def merge(i: int) -> dict[str, object]:
        return await gql(
            client,
            UPDATE_USER,
            {
                "endpoint": "users",
                "uniqueId": account.unique_id,
                "data": {f"key{i}": i},
                "strategy": "MERGE",
            },
            headers=account.auth,
        )

    results = await asyncio.gather(*(merge(i) for i in range(n)))
    assert all(r["data"]["updateUser"]["errors"] == [] for r in results)
    body = await gql(
        client,
        RECORD,
        {"endpoint": "users", "uniqueId": account.unique_id},
        headers={"X-Master-Key": project.master_key},
    )
    record = body["data"]["record"]
    assert {f"key{i}" for i in range(n)} <= set(record["data"])
    assert record["version"] == 1 + n
    versions = sorted(r["data"]["updateUser"]["record"]["version"] for r in results)
    assert versions == list(range(2, 2 + n))


async def test_same_expected_version_has_exactly_one_winner(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)

    async def update(i: int) -> dict[str, object]:
        return await gql(
            client,
            UPDATE_USER,
            {
                "endpoint": "users",
                "uniqueId": account.unique_id,
                "data": {"winner": i},
                "strategy": "MERGE",
                "expectedVersion": 1,
            },
            headers={"X-Master-Key": project.master_key},
        )

    results = await asyncio.gather(*(update(i) for i in range(20)))
    payloads = [r["data"]["updateUser"] for r in results]
    winners = [p for p in payloads if not p["errors"]]
    losers = [p for p in payloads if p["errors"]]
    assert len(winners) == 1
    assert len(losers) == 19
    assert all(p["errors"][0]["code"] == "VERSION_CONFLICT" for p in losers)
    assert all(p["record"] is None for p in losers)
    body = await gql(
        client,
        RECORD,
        {"endpoint": "users", "uniqueId": account.unique_id},
        headers={"X-Master-Key": project.master_key},
    )
    assert body["data"]["record"]["version"] == 2
    assert body["data"]["record"]["data"]["winner"] == winners[0]["record"]["data"]["winner"]
