"""Subscription meUpdated over graphql-transport-ws, against served processes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.conftest import PASSWORD
from tests.db import BACKEND, TestDB
from tests.servers import Server, amend, create_project, serve

SUBSCRIBE = "subscription { meUpdated { username firstName version } }"


async def _sign_up(server: Server, key: str, username: str = "ann") -> tuple[str, str]:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(
            f"{server.base_url}/1/ce/users",
            params={"key": key},
            json={"username": username, "password": PASSWORD},
        )
    assert r.status_code == 201, r.text
    return r.json()["uniqueId"], r.headers["authorization"].removeprefix("Bearer ")


async def _open(server: Server, token: str, origin: str | None = None) -> ClientConnection:
    ws = await connect(
        server.base_url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
    )
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
    await asyncio.sleep(0.3)  # let the server register the watcher
    return ws


async def _next(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        if message["type"] != "ping":
            return message  # type: ignore[no-any-return]


async def _patch_me(server: Server, token: str, first_name: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.patch(
            f"{server.base_url}/me",
            json={"first_name": first_name},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text


@pytest.fixture
def project_keys(tmp_path: Path, db: TestDB) -> dict[str, str]:
    return create_project(tmp_path, db.url)


async def test_changes_from_every_route_reach_the_subscriber(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    key = project_keys["api_key"]
    with serve(tmp_path, db.url) as server:
        unique_id, token = await _sign_up(server, key)
        ws = await _open(server, token)
        try:
            await _patch_me(server, token, "Ann")
            message = await _next(ws)
            assert message["type"] == "next"
            assert message["payload"]["data"]["meUpdated"]["firstName"] == "Ann"
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
                r = await client.put(
                    "/1/ce/users",
                    params={"key": key, "uniqueId": unique_id, "strategy": "merge"},
                    json={"theme": "dark"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 200
                assert (await _next(ws))["payload"]["data"]["meUpdated"]["version"] == 3
                r = await client.post(
                    "/graphql",
                    json={
                        "query": "mutation($i: UpdateMeInput!) { updateMe(input: $i) "
                        "{ errors { code } } }",
                        "variables": {"i": {"lastName": "Lovelace"}},
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.json()["data"]["updateMe"]["errors"] == []
                assert (await _next(ws))["payload"]["data"]["meUpdated"]["version"] == 4
                # A password change through §7.2 revokes the session: the stream ends.
                r = await client.put(
                    "/api/user/v1/update",
                    json={"pwd": "N3w-secret-Pw"},
                    headers={"X-Access-Token": token},
                )
                assert r.json()["code"] == 0
            assert (await _next(ws))["type"] == "complete"
        finally:
            await ws.close()


async def test_a_revoked_session_closes_its_stream(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    with serve(tmp_path, db.url) as server:
        _, token = await _sign_up(server, project_keys["api_key"])
        ws = await _open(server, token)
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.post(
                    f"{server.base_url}/graphql",
                    json={"query": "mutation { signOut }"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.json() == {"data": {"signOut": True}}
            assert (await _next(ws))["type"] == "complete"
        finally:
            await ws.close()


async def test_subscribing_without_a_valid_token_is_refused(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    with serve(tmp_path, db.url) as server:
        ws = await _open(server, "not-a-token")
        try:
            # Execution errors travel in a `next` message, then the operation completes.
            message = await _next(ws)
            assert message["type"] == "next"
            assert message["payload"]["data"] is None
            assert message["payload"]["errors"][0]["extensions"]["reason"] == "INVALID_TOKEN"
            assert (await _next(ws))["type"] == "complete"
        finally:
            await ws.close()


async def test_the_projects_origin_allow_list_applies_to_the_websocket(
    tmp_path: Path, db: TestDB
) -> None:
    def project(name: str, origin: str) -> dict[str, str]:
        out = amend(tmp_path, db.url, "project", "create", name, "--origin", origin, "--json")
        return json.loads(out)  # type: ignore[no-any-return]

    locked = project("locked", "https://app.example.com")
    project("other", "https://other.example.com")
    with serve(tmp_path, db.url) as server:
        _, token = await _sign_up(server, locked["api_key"])
        # An origin no project lists cannot even open the socket (cross-site hijacking).
        with pytest.raises(InvalidStatus) as refused:
            await _open(server, token, origin="https://evil.example.net")
        assert refused.value.response.status_code == 403
        # Listed by another project: the socket opens, the caller's own project refuses it.
        elsewhere = await _open(server, token, origin="https://other.example.com")
        allowed = await _open(server, token, origin="https://app.example.com")
        try:
            message = await _next(elsewhere)
            assert message["payload"]["errors"][0]["extensions"]["reason"] == "ORIGIN_NOT_ALLOWED"
            await _patch_me(server, token, "Ann")
            message = await _next(allowed)
            assert message["payload"]["data"]["meUpdated"]["firstName"] == "Ann"
        finally:
            await elsewhere.close()
            await allowed.close()


if BACKEND == "postgresql":

    async def test_a_change_through_another_instance_reaches_the_subscriber(
        tmp_path: Path, db: TestDB, project_keys: dict[str, str]
    ) -> None:
        with serve(tmp_path, db.url) as a, serve(tmp_path, db.url) as b:
            _, token = await _sign_up(a, project_keys["api_key"])
            ws = await _open(a, token)
            try:
                await _patch_me(b, token, "Ann")
                message = await _next(ws)
                assert message["payload"]["data"]["meUpdated"]["firstName"] == "Ann"
            finally:
                await ws.close()
