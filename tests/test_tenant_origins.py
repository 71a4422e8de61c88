"""One tenant's allow-list never opens another tenant's users to other origins.

A project created with `--origin '*'` lists every origin for its own answers. Before, that `*`
counted for every request that named no project (preflights on `/graphql` and `/me`, the
actual requests' CORS headers, WebSocket handshakes), so a page on any site could read another
project's signed-in users with their cookies.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import ME, Account, sign_up
from tests.servers import amend, create_project, serve

EVIL = "https://evil.example"
APP = "https://app.example.com"
CORS_HEADERS = ("access-control-allow-origin", "access-control-allow-credentials")


def preflight(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type",
    }


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    """A user of the default project, which sets no allow-list."""
    account = await sign_up(client, project.api_key, "jane")
    client.cookies.clear()
    return account


def with_cookie(account: Account, origin: str) -> dict[str, str]:
    """What a browser sends from a page on `origin`: the victim's session cookie."""
    return {"Origin": origin, "Cookie": f"access_token={account.token}"}


@pytest.fixture
async def open_tenant(make_project_fn: object) -> ProjectKeys:
    return await make_project_fn("open", origins=["*"])  # type: ignore[operator]


@pytest.mark.parametrize(("path", "method"), [("/graphql", "POST"), ("/me", "PATCH")])
async def test_another_projects_star_does_not_answer_project_less_preflights(
    client: httpx.AsyncClient, open_tenant: ProjectKeys, path: str, method: str
) -> None:
    r = await client.options(path, headers=preflight(EVIL, method))
    assert r.status_code == 403
    assert not any(h in r.headers for h in CORS_HEADERS)


async def test_an_exactly_listed_origin_still_gets_project_less_preflights(
    client: httpx.AsyncClient, make_project_fn: object
) -> None:
    await make_project_fn("app", origins=[APP])  # type: ignore[operator]
    r = await client.options("/graphql", headers=preflight(APP, "POST"))
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP


async def test_another_projects_star_does_not_expose_this_projects_user_over_rest(
    client: httpx.AsyncClient, jane: Account, open_tenant: ProjectKeys
) -> None:
    r = await client.get("/me", headers=with_cookie(jane, EVIL))
    assert r.status_code == 200  # the project sets no allow-list; the browser cannot read it
    assert not any(h in r.headers for h in CORS_HEADERS), r.headers
    assert "Origin" in r.headers["vary"]


async def test_another_projects_star_does_not_expose_this_projects_user_over_graphql(
    client: httpx.AsyncClient, jane: Account, open_tenant: ProjectKeys
) -> None:
    r = await client.post("/graphql", json={"query": ME}, headers=with_cookie(jane, EVIL))
    assert r.json()["data"]["me"]["username"] == "jane"
    assert not any(h in r.headers for h in CORS_HEADERS), r.headers


async def test_an_origin_listed_by_another_project_does_not_read_this_projects_user(
    client: httpx.AsyncClient, jane: Account, make_project_fn: object
) -> None:
    await make_project_fn("evil-friendly", origins=[EVIL])  # type: ignore[operator]
    for r in (
        await client.get("/me", headers=with_cookie(jane, EVIL)),
        await client.post("/graphql", json={"query": ME}, headers=with_cookie(jane, EVIL)),
    ):
        assert not any(h in r.headers for h in CORS_HEADERS), r.headers


async def test_a_projects_own_star_exposes_its_own_users(
    client: httpx.AsyncClient, open_tenant: ProjectKeys
) -> None:
    olga = await sign_up(client, open_tenant.api_key, "olga")
    r = await client.get("/me", headers=with_cookie(olga, EVIL))
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == EVIL
    assert r.headers["access-control-allow-credentials"] == "true"


async def test_a_listed_origin_reads_the_error_of_a_request_without_a_project(
    client: httpx.AsyncClient, make_project_fn: object
) -> None:
    await make_project_fn("app", origins=[APP])  # type: ignore[operator]
    r = await client.get("/me", headers={"Origin": APP})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == APP


def _second_project(tmp_path: Path, url: str, *origins: str) -> None:
    args = [a for origin in origins for a in ("--origin", origin)]
    amend(tmp_path, url, "project", "create", "other", *args, "--json")


async def _signed_up_token(base_url: str, key: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(
            f"{base_url}/1/ce/users",
            params={"key": key},
            json={"username": "ann", "password": PASSWORD},
        )
    assert r.status_code == 201, r.text
    return r.headers["authorization"].removeprefix("Bearer ")


async def test_another_projects_star_does_not_open_websockets_to_any_origin(
    tmp_path: Path, db: TestDB
) -> None:
    keys = create_project(tmp_path, db.url)
    _second_project(tmp_path, db.url, "*")
    with serve(tmp_path, db.url) as server:
        token = await _signed_up_token(server.base_url, keys["api_key"])
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                server.base_url.replace("http", "ws") + "/graphql",
                subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
                origin=EVIL,  # type: ignore[arg-type]
                additional_headers={"Cookie": f"access_token={token}"},
            )
        assert refused.value.response.status_code == 403


async def test_an_origin_listed_by_another_project_cannot_watch_this_projects_user(
    tmp_path: Path, db: TestDB
) -> None:
    keys = create_project(tmp_path, db.url)
    _second_project(tmp_path, db.url, EVIL)
    with serve(tmp_path, db.url) as server:
        token = await _signed_up_token(server.base_url, keys["api_key"])
        ws = await connect(
            server.base_url.replace("http", "ws") + "/graphql",
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            origin=EVIL,  # type: ignore[arg-type]
        )
        received: list[dict[str, object]] = []
        try:
            await ws.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": "subscription { meUpdated { username } }"},
                    }
                )
            )
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                received.append(message)
                if message["type"] in ("error", "complete"):
                    break
        except ConnectionClosed as closed:
            # Refused at `connection_init` (4403) is as good as a refused subscription.
            assert closed.rcvd is not None and closed.rcvd.code == 4403
        finally:
            await ws.close()
        # No user data ever arrives: the subscription is refused for the origin.
        answers = [m for m in received if m["type"] in ("next", "error")]
        for answer in answers:
            payload = answer["payload"]
            errors = payload if isinstance(payload, list) else payload.get("errors")  # type: ignore[union-attr]
            assert not isinstance(payload, dict) or payload.get("data") is None, received
            assert errors[0]["extensions"]["reason"] == "ORIGIN_NOT_ALLOWED", received
