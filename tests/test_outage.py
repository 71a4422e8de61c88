"""The database goes away — refusing connections, or hung — and comes back (SPEC §12).

Each test runs a private PostgreSQL cluster (never the suite's shared one) and a served
process on it, then stops, freezes (SIGSTOP) or crashes the cluster under it.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from scripts import pgcluster
from tests.conftest import PASSWORD
from tests.servers import Server, create_project, serve


@dataclass
class Setup:
    pg: pgcluster.Cluster
    server: Server
    key: str
    unique_id: str
    auth: str


@pytest.fixture
def outage(tmp_path: Path) -> Iterator[Setup]:
    with pgcluster.cluster(pgcluster.DURABLE) as pg:
        key = create_project(tmp_path, pg.url)["api_key"]
        with serve(tmp_path, pg.url) as server:
            r = httpx.post(
                f"{server.base_url}/1/ce/users",
                params={"key": key},
                json={"username": "ann", "password": PASSWORD},
            )
            assert r.status_code == 201, r.text
            yield Setup(pg, server, key, r.json()["uniqueId"], r.headers["authorization"])


# What each request answers with the database up (the §7.2 one is refused after the token
# check, so it changes nothing).
SERVED = {"graphql": 200, "ce": 200, "user_v1": 400, "me": 200, "readyz": 200}


def _requests(s: Setup) -> dict[str, httpx.Request]:
    """One request per API (and the readiness probe)."""
    base, auth = s.server.base_url, {"Authorization": s.auth}
    gql = {"query": "{ me { username } }"}
    return {
        "graphql": httpx.Request("POST", f"{base}/graphql", json=gql, headers=auth),
        "ce": httpx.Request(
            "GET",
            f"{base}/1/ce/users",
            params={"key": s.key, "uniqueId": s.unique_id},
            headers=auth,
        ),
        "user_v1": httpx.Request(
            "PUT",
            f"{base}/api/user/v1/update",
            json={"nickname": "x"},
            headers={"X-Access-Token": s.auth.removeprefix("Bearer ")},
        ),
        "me": httpx.Request("GET", f"{base}/me", headers=auth),
        "readyz": httpx.Request("GET", f"{base}/readyz"),
    }


def _assert_unavailable(s: Setup) -> None:
    with httpx.Client(timeout=10) as client:
        for api, request in _requests(s).items():
            started = time.monotonic()
            r = client.send(request)
            elapsed = time.monotonic() - started
            assert r.status_code == 503, (api, r.status_code, r.text)
            assert elapsed < 2, (api, elapsed)
            if api == "readyz":
                continue
            assert r.headers["retry-after"].isdigit(), api
            body = r.json()
            if api == "graphql":
                assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            elif api == "user_v1":
                assert body["code"] == 50301
            elif api == "ce":
                assert body["error"] == "SERVICE_UNAVAILABLE"
            else:
                assert body["errors"][0]["code"] == "SERVICE_UNAVAILABLE"


def _assert_serves_again(s: Setup, within: float = 5) -> None:
    deadline = time.monotonic() + within
    with httpx.Client(timeout=10) as client:
        for api, request in _requests(s).items():
            while True:
                r = client.send(request)
                if r.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert r.status_code == SERVED[api], (api, r.status_code, r.text)
            if api == "graphql":
                assert r.json()["data"] == {"me": {"username": "ann"}}
    assert s.server.process.poll() is None


def test_every_api_answers_503_while_the_database_is_down_then_serves_again(
    outage: Setup,
) -> None:
    outage.pg.stop("fast")
    _assert_unavailable(outage)
    _assert_unavailable(outage)  # and again: nothing piles up
    outage.pg.start()
    _assert_serves_again(outage)


def test_every_api_answers_503_while_the_database_hangs_then_serves_again(
    outage: Setup,
) -> None:
    outage.pg.freeze()
    try:
        _assert_unavailable(outage)
    finally:
        outage.pg.thaw()
    _assert_serves_again(outage)


async def test_subscriptions_hear_changes_again_after_a_restart(outage: Setup) -> None:
    s = outage
    async with connect(
        s.server.base_url.replace("http", "ws") + "/graphql",
        subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
    ) as ws:
        token = s.auth.removeprefix("Bearer ")
        await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        query = "subscription { meUpdated { firstName } }"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(s.pg.stop, "immediate")
        await asyncio.to_thread(s.pg.start)
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=10) as client:
            while True:  # the first requests may meet connections the restart closed
                r = await client.patch(
                    f"{s.server.base_url}/me",
                    json={"first_name": "Back"},
                    headers={"Authorization": s.auth},
                )
                if r.status_code != 503 or time.monotonic() - started > 5:
                    break
                await asyncio.sleep(0.1)
        assert r.status_code == 200, r.text
        seen: list[object] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
            if message["type"] == "next":
                seen.append(message["payload"]["data"]["meUpdated"]["firstName"])
                if "Back" in seen:
                    break
        assert "Back" in seen


def test_no_acknowledged_write_is_lost_when_postgres_crashes_under_load(
    outage: Setup,
) -> None:
    s = outage
    acknowledged: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(100_000):
                if stop.is_set():
                    return
                r = client.put(
                    f"{s.server.base_url}/1/ce/users",
                    params={"key": s.key, "uniqueId": s.unique_id, "strategy": "merge"},
                    json={f"k{i}": i},
                    headers={"Authorization": s.auth},
                )
                if r.status_code == 200:
                    acknowledged.append(i)

    writer = threading.Thread(target=stream)
    writer.start()
    try:
        time.sleep(1.0)
        s.pg.stop("immediate")
        time.sleep(0.5)
        s.pg.start()
        time.sleep(1.0)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert len(acknowledged) > 10
    _assert_serves_again(s)
    r = httpx.get(
        f"{s.server.base_url}/1/ce/users",
        params={"key": s.key, "uniqueId": s.unique_id},
        headers={"Authorization": s.auth},
    )
    assert {f"k{i}" for i in acknowledged} <= set(r.json()["data"])
