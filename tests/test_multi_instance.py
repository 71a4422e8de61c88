"""Two `amend serve` processes on one database: nothing that decides lives in one process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.db import TestDB
from tests.servers import Server, create_project, merge_concurrently, serve, sign_up

SIGN_IN = "mutation($i: SignInInput!) { signIn(input: $i) { token errors { code } } }"
ME = "{ me { username version } }"


@pytest.fixture
def pair(tmp_path: Path, db: TestDB) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    keys = create_project(tmp_path, db.url)
    with serve(tmp_path, db.url) as a, serve(tmp_path, db.url) as b:
        yield a, b, keys


async def _gql(
    client: httpx.AsyncClient,
    server: Server,
    query: str,
    variables: dict[str, object] | None = None,
    **headers: str,
) -> dict[str, object]:
    r = await client.post(
        f"{server.base_url}/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert isinstance(body, dict)
    return body


async def test_session_revoked_on_one_instance_is_refused_by_the_other(
    pair: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, keys = pair
    async with httpx.AsyncClient(timeout=10) as client:
        _, auth = await sign_up(client, a, keys["api_key"])
        body = await _gql(client, b, ME, Authorization=auth)
        assert body["data"] == {"me": {"username": "ann", "version": 1}}
        assert (await _gql(client, a, "mutation { signOut }", Authorization=auth))["data"]
        body = await _gql(client, b, ME, Authorization=auth)
        assert body["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"  # type: ignore[index]


async def test_password_changed_on_one_instance_invalidates_tokens_on_the_other(
    pair: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, keys = pair
    async with httpx.AsyncClient(timeout=10) as client:
        _, auth = await sign_up(client, a, keys["api_key"])
        r = await client.put(
            f"{a.base_url}/api/user/v1/update",
            json={"pwd": "N3w-secret-Pw"},
            headers={"X-Access-Token": auth.removeprefix("Bearer ")},
        )
        assert r.json() == {"code": 0, "message": "", "result": None}
        r = await client.get(f"{b.base_url}/me", headers={"Authorization": auth})
        assert r.status_code == 401
        assert r.json()["errors"][0]["code"] == "SESSION_REVOKED"
        body = await _gql(
            client,
            b,
            SIGN_IN,
            {"i": {"identifier": "ann", "password": "N3w-secret-Pw"}},
            **{"X-API-Key": keys["api_key"]},
        )
        assert body["data"]["signIn"]["errors"] == []  # type: ignore[index]


async def test_concurrent_merges_through_both_instances_lose_no_key(
    pair: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, keys = pair
    async with httpx.AsyncClient(timeout=30) as client:
        unique_id, auth = await sign_up(client, a, keys["api_key"])
        r = await merge_concurrently(client, (a, b), keys["api_key"], unique_id, auth, n=40)
        assert r.headers["etag"] == '"41"'


async def test_sign_in_throttling_counts_across_instances(
    pair: tuple[Server, Server, dict[str, str]],
) -> None:
    a, b, keys = pair
    async with httpx.AsyncClient(timeout=10) as client:
        await sign_up(client, a, keys["api_key"])

        async def attempt(server: Server, password: str) -> dict[str, object]:
            return await _gql(
                client,
                server,
                SIGN_IN,
                {"i": {"identifier": "ann", "password": password}},
                **{"X-API-Key": keys["api_key"]},
            )

        for i in range(5):  # the default limit: 5 failures per identifier
            body = await attempt(a if i % 2 else b, "Wrong-pass-1")
            assert body["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"  # type: ignore[index]
        for server in (a, b):
            body = await attempt(server, PASSWORD)
            assert body["errors"][0]["extensions"]["reason"] == "RATE_LIMITED"  # type: ignore[index]


async def test_serve_with_two_workers_loses_no_merge(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    with serve(tmp_path, db.url, "--workers", "2") as server:
        async with httpx.AsyncClient(timeout=30) as client:
            unique_id, auth = await sign_up(client, server, keys["api_key"])
            await merge_concurrently(client, (server,), keys["api_key"], unique_id, auth)
