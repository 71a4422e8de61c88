"""Concurrent updates through HTTP: no lost update, exactly one winner per version."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import ProjectKeys
from tests.gql import RECORD, UPDATE_USER, gql, sign_in, sign_up

# Every request here waits for the same row: give them time to queue for a connection rather
# than be answered 503 (what an overloaded production pool does by design).
pytestmark = pytest.mark.parametrize("settings_env", [{"AMEND_DB_POOL_TIMEOUT": "60"}])


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


async def test_parallel_wrong_sign_ins_cannot_outrun_the_throttle(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)

    async def attempt() -> dict[str, object]:
        return await sign_in(client, project.api_key, "jane", "Wrong-pass-1")

    results = await asyncio.gather(*(attempt() for _ in range(20)))
    refused = [r for r in results if r.get("errors")]
    wrong = [r for r in results if not r.get("errors")]
    # The default limit is 5 failures per identifier: every attempt past it is throttled,
    # even when all of them arrive before the first one was verified.
    assert len(wrong) == 5
    assert all(r["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS" for r in wrong)
    assert len(refused) == 15
    assert all(r["errors"][0]["extensions"]["reason"] == "RATE_LIMITED" for r in refused)
