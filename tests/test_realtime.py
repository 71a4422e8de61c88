"""Subscription meUpdated over graphql-transport-ws, against served processes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

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


async def _connect(
    server: Server, origin: str | None = None, headers: dict[str, str] | None = None
) -> ClientConnection:
    return await connect(
        server.base_url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
        origin=origin,  # type: ignore[arg-type]
        additional_headers=headers,
    )


async def _receive(ws: ClientConnection) -> dict[str, Any]:
    """One protocol message. graphql-transport-ws messages are text frames: the reference
    client closes the socket (4004) on a binary one, so a binary frame fails here too."""
    frame = await asyncio.wait_for(ws.recv(), timeout=10)
    assert isinstance(frame, str), f"a binary frame: {frame!r}"
    message = json.loads(frame)
    assert isinstance(message, dict)
    return message


async def _open(server: Server, token: str, origin: str | None = None) -> ClientConnection:
    ws = await _connect(server, origin)
    await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
    assert (await _receive(ws))["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
    await asyncio.sleep(0.3)  # let the server register the watcher
    return ws


async def _next(ws: ClientConnection) -> dict[str, Any]:
    while True:
        message = await _receive(ws)
        if message["type"] != "ping":
            return message


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


async def _refused_at_init(ws: ClientConnection, payload: dict[str, Any]) -> int | None:
    """The close code answering `connection_init` with `payload`."""
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    with pytest.raises(ConnectionClosed) as closed:
        await _receive(ws)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code


async def test_a_bad_token_at_connection_init_closes_with_4403(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    with serve(tmp_path, db.url) as server:
        _, token = await _sign_up(server, project_keys["api_key"])
        async with httpx.AsyncClient(timeout=10) as client:
            r = await client.post(
                f"{server.base_url}/graphql",
                json={"query": "mutation { signOut }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.json() == {"data": {"signOut": True}}
        # Invalid and revoked, in the payload, the header or the cookie: 4403 Forbidden.
        for bad in ("not-a-token", token):
            assert await _refused_at_init(await _connect(server), {"token": bad}) == 4403
            ws = await _connect(server, headers={"Authorization": f"Bearer {bad}"})
            assert await _refused_at_init(ws, {}) == 4403
            ws = await _connect(server, headers={"Cookie": f"access_token={bad}"})
            assert await _refused_at_init(ws, {}) == 4403
        assert await _refused_at_init(await _connect(server), {"token": 42}) == 4403


async def test_the_protocol_close_codes(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    with serve(tmp_path, db.url) as server:
        _, token = await _sign_up(server, project_keys["api_key"])
        # Subscribing before the acknowledgement: 4401 Unauthorized.
        ws = await _connect(server)
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        with pytest.raises(ConnectionClosed) as closed:
            await _receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        # A second connection_init: 4429 Too many initialisation requests.
        ws = await _connect(server)
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert (await _receive(ws))["type"] == "connection_ack"
        assert await _refused_at_init(ws, {"token": token}) == 4429
        # A binary frame or a message without a type: 4400 Bad Request.
        ws = await _connect(server)
        await ws.send(b'{"type": "connection_init"}')
        with pytest.raises(ConnectionClosed) as closed:
            await _receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
        ws = await _connect(server)
        await ws.send(json.dumps({"payload": {}}))
        with pytest.raises(ConnectionClosed) as closed:
            await _receive(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
        # A ping is answered with a pong, in a text frame like every message.
        ws = await _open(server, token)
        try:
            await ws.send(json.dumps({"type": "ping"}))
            assert (await _next(ws))["type"] == "pong"
            # The same operation id twice: 4409 Subscriber for 1 already exists.
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            )
            with pytest.raises(ConnectionClosed) as closed:
                await _receive(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
        finally:
            await ws.close()


async def test_a_socket_without_a_token_is_acknowledged_and_the_subscription_refused(
    tmp_path: Path, db: TestDB, project_keys: dict[str, str]
) -> None:
    with serve(tmp_path, db.url) as server:
        ws = await _connect(server)
        try:
            await ws.send(json.dumps({"type": "connection_init"}))
            assert (await _receive(ws))["type"] == "connection_ack"
            await ws.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
            )
            # Execution errors travel in a `next` message, then the operation completes.
            message = await _next(ws)
            assert message["type"] == "next"
            assert message["payload"]["data"] is None
            assert message["payload"]["errors"][0]["extensions"]["reason"] == "MISSING_TOKEN"
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
