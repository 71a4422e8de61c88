"""Operations endpoints: liveness, readiness, metrics, request ids and request logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.services.container import Services
from tests.conftest import ProjectKeys, make_settings
from tests.gql import sign_in, sign_up


async def test_healthz_answers_while_the_process_is_up(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_readyz_is_ready_on_a_migrated_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "database": True, "migrations_current": True}


async def test_readyz_is_503_when_the_database_cannot_be_reached(tmp_path: Path) -> None:
    # Nothing listens on port 1 of the loopback: the connection is refused at once.
    settings = make_settings("postgresql+asyncpg://amend@127.0.0.1:1/amend")
    services = Services.build(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/readyz")
    finally:
        await services.close()
    assert r.status_code == 503
    assert r.json()["database"] is False


async def test_readyz_is_503_when_migrations_are_behind(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    services = Services.build(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            r = await c.get("/readyz")
    finally:
        await services.close()
    assert r.status_code == 503
    assert r.json() == {"status": "not ready", "database": True, "migrations_current": False}


async def test_metrics_count_requests_failures_throttles_and_backlog(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)
    for _ in range(6):  # the sixth is throttled
        await sign_in(client, project.api_key, "jane", "Wrong-pass-1")
    await client.get("/1/ce/users", params={"key": project.api_key})
    text = (await client.get("/metrics")).text
    assert 'amend_http_requests_total{route="/graphql",method="POST",status="2xx"} 7' in text
    assert 'amend_http_requests_total{route="/1/ce/{endpoint}",method="GET",status="4xx"} 1' in text
    assert 'amend_throttled_requests_total{route="/graphql"} 1' in text
    assert re.search(r'amend_http_request_duration_seconds_count\{route="/graphql"\} 7', text)
    assert 'le="+Inf"' in text
    assert "amend_signin_failures_total 5" in text
    assert "amend_outbox_backlog 0" in text


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/healthz", headers={"X-Request-ID": "bad id\\with junk" * 10})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_each_request_logs_one_line_with_its_id_and_no_query_string(
    client: httpx.AsyncClient, project: ProjectKeys, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="amend.http")
    r = await client.get(
        "/1/ce/users", params={"key": project.api_key, "masterKey": project.master_key}
    )
    records = [rec for rec in caplog.records if rec.name == "amend.http"]
    assert len(records) == 1
    record = records[0]
    assert record.request_id == r.headers["x-request-id"]  # type: ignore[attr-defined]
    assert record.route == "/1/ce/{endpoint}"  # type: ignore[attr-defined]
    assert record.status == r.status_code  # type: ignore[attr-defined]
    assert project.master_key not in caplog.text
    assert project.api_key not in caplog.text
