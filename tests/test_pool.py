"""An exhausted connection pool answers 503 at once instead of queueing requests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.gql import sign_up

pytestmark = pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_DB_POOL_SIZE": "1", "AMEND_DB_MAX_OVERFLOW": "0", "AMEND_DB_POOL_TIMEOUT": "0.2"}],
)


@asynccontextmanager
async def every_connection_taken(services: Services) -> AsyncIterator[None]:
    """Hold the pool's only connection; on SQLite also the writer connection, which a read
    takes first when no write is under way."""
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(services.db.read())
        if services.db.is_sqlite:
            await stack.enter_async_context(services.db.read())
        yield


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "check"),
    [
        ("POST", "/graphql", {"json": {"query": "{ me { id } }"}}, "graphql"),
        ("GET", "/me", {}, "me"),
        ("POST", "/api/user/v1/update", {"json": {"pwd": "x"}}, "v1"),
        ("GET", "/1/ce/users", {}, "ce"),
    ],
)
async def test_exhausted_pool_answers_503_fast(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    settings_env: dict[str, str],
    method: str,
    path: str,
    kwargs: dict[str, object],
    check: str,
) -> None:
    account = await sign_up(client, project.api_key)
    headers = {"Authorization": f"Bearer {account.token}"}
    if check == "ce":
        kwargs = {"params": {"uniqueId": account.unique_id, "key": project.api_key}}
    async with every_connection_taken(services):
        start = time.perf_counter()
        r = await client.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - start
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert elapsed < 2
    body = r.json()
    if check == "graphql":
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    elif check == "me":
        assert body["status"] == 503 and body["errors"][0]["code"] == "SERVICE_UNAVAILABLE"
    elif check == "v1":
        assert body["code"] == 50301
    else:
        assert body == {
            "status": 503,
            "error": "SERVICE_UNAVAILABLE",
            "message": "the service is busy; retry shortly",
        }
    # Once the connection is back, requests are served again.
    r = await client.post("/graphql", json={"query": "{ me { id } }"}, headers=headers)
    assert r.status_code == 200
    assert r.json()["data"]["me"]["id"] == f"user_{account.unique_id}"


async def test_exhausted_pool_answers_a_preflight_and_a_cors_request_with_503(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    async with every_connection_taken(services):
        r = await client.options(
            "/me",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "PATCH"},
        )
        assert (r.status_code, r.headers["retry-after"]) == (503, "1")
        r = await client.get(
            "/me",
            headers={
                "Origin": "https://app.example.com",
                "Authorization": f"Bearer {account.token}",
            },
        )
        assert r.status_code == 503
