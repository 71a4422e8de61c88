"""Served processes through PgBouncer in transaction pooling mode (SPEC §12).

`AMEND_DATABASE_URL` points at PgBouncer, `AMEND_DATABASE_LISTEN_URL` at PostgreSQL itself.
Consecutive transactions of one client connection may then run on different server
connections, so anything kept on a server session (a named prepared statement, LISTEN) breaks.
A private cluster, with PgBouncer in front of it, serves the whole module.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from scripts import pgcluster
from tests.conftest import PASSWORD
from tests.servers import Server, amend, create_project, merge_concurrently, serve, sign_up

Setup = tuple[Server, Server, dict[str, str], str, str]


@pytest.fixture(scope="module")
def bounced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    cwd = tmp_path_factory.mktemp("bouncer")
    with pgcluster.cluster() as pg, pgcluster.pgbouncer(pg.port, pool_size=4) as bouncer:
        url = bouncer.url()
        keys = create_project(cwd, url)
        env = {"AMEND_DATABASE_LISTEN_URL": pg.url}
        with serve(cwd, url, **env) as a, serve(cwd, url, **env) as b:
            yield a, b, keys, url, pg.url


def test_migrate_runs_again_and_again_from_new_processes(bounced: Setup, tmp_path: Path) -> None:
    *_, url, _ = bounced
    for _ in range(3):
        amend(tmp_path, url, "migrate")


async def test_sign_up_and_sign_in_through_both_instances(bounced: Setup) -> None:
    a, b, keys, *_ = bounced
    async with httpx.AsyncClient(timeout=10) as client:
        await sign_up(client, a, keys["api_key"], "signin")
        for server in (a, b, a, b):
            r = await client.post(
                f"{server.base_url}/graphql",
                json={
                    "query": "mutation($i: SignInInput!) { signIn(input: $i) "
                    "{ token errors { code } } }",
                    "variables": {"i": {"identifier": "signin", "password": PASSWORD}},
                },
                headers={"X-API-Key": keys["api_key"]},
            )
            assert r.json()["data"]["signIn"]["errors"] == [], r.text


async def test_concurrent_merges_lose_no_update(bounced: Setup) -> None:
    a, b, keys, *_ = bounced
    async with httpx.AsyncClient(timeout=30) as client:
        unique_id, auth = await sign_up(client, a, keys["api_key"], "merger")
        r = await merge_concurrently(client, (a, b), keys["api_key"], unique_id, auth)
        assert r.headers["etag"] == '"31"'


async def test_a_password_change_revokes_sessions_on_both_instances(bounced: Setup) -> None:
    a, b, keys, *_ = bounced
    async with httpx.AsyncClient(timeout=10) as client:
        _, auth = await sign_up(client, a, keys["api_key"], "changer")
        r = await client.put(
            f"{b.base_url}/api/user/v1/update",
            json={"pwd": "N3w-secret-Pw"},
            headers={"X-Access-Token": auth.removeprefix("Bearer ")},
        )
        assert r.json() == {"code": 0, "message": "", "result": None}
        for server in (a, b):
            r = await client.get(f"{server.base_url}/me", headers={"Authorization": auth})
            assert r.status_code == 401
            assert r.json()["errors"][0]["code"] == "SESSION_REVOKED"


async def test_me_updated_reaches_a_subscriber_on_the_other_instance(bounced: Setup) -> None:
    a, b, keys, *_ = bounced
    async with httpx.AsyncClient(timeout=10) as client:
        _, auth = await sign_up(client, a, keys["api_key"], "watcher")
        token = auth.removeprefix("Bearer ")
        async with connect(
            b.base_url.replace("http", "ws") + "/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        ) as ws:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            query = "subscription { meUpdated { firstName } }"
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
            await asyncio.sleep(0.3)
            r = await client.patch(
                f"{a.base_url}/me", json={"first_name": "Ann"}, headers={"Authorization": auth}
            )
            assert r.status_code == 200, r.text
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if message["type"] != "ping":
                    break
            assert message["payload"]["data"]["meUpdated"] == {"firstName": "Ann"}


async def test_a_direct_connection_may_keep_prepared_statements(
    bounced: Setup, tmp_path: Path
) -> None:
    """AMEND_DB_SERVER_PREPARED: named statements and reads outside transactions, for a
    PostgreSQL reached without a pooler (here the LISTEN URL)."""
    *_, keys, _, direct = bounced
    with serve(tmp_path, direct, AMEND_DB_SERVER_PREPARED="true") as server:
        async with httpx.AsyncClient(timeout=10) as client:
            _, auth = await sign_up(client, server, keys["api_key"], "direct")
            for first_name in ("Ann", "Anne"):
                r = await client.patch(
                    f"{server.base_url}/me",
                    json={"first_name": first_name},
                    headers={"Authorization": auth},
                )
                assert r.status_code == 200, r.text
            r = await client.get(f"{server.base_url}/me", headers={"Authorization": auth})
            assert r.json()["data"]["first_name"] == "Anne", r.text
