"""Clients that send their body too slowly, or leave before sending it, against a served
process: a bounded 408, and never counted or logged as a server error."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx

from tests.db import TestDB
from tests.servers import Server, create_project, serve

HEAD = (
    "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "Content-Length: 200\r\n\r\n"
)


async def _partial(
    server: Server, path: str, method: str = "POST"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that sends its headers and 20 of the 200 body bytes it announced."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(HEAD.format(method=method, path=path).encode() + b'{"query": "{ me { id ')
    await writer.drain()
    return reader, writer


async def _metrics(server: Server) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        return (await client.get("/metrics")).text


def _count(metrics: str, route: str, status_class: str) -> int:
    labels = f'route="{route}",method="POST",status="{status_class}"'
    pattern = rf"amend_http_requests_total\{{{re.escape(labels)}\}} (\d+)"
    found = re.search(pattern, metrics)
    return int(found.group(1)) if found else 0


def _logged_statuses(log: Path) -> list[int]:
    statuses = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "request" and record.get("method") in ("POST", "PATCH"):
            statuses.append(record["status"])
    return statuses


async def test_a_body_that_never_finishes_is_answered_408_within_the_body_time_out(
    tmp_path: Path, db: TestDB
) -> None:
    keys = create_project(tmp_path, db.url)
    log = tmp_path / "server.log"
    with serve(
        tmp_path, db.url, log=log, AMEND_BODY_TIMEOUT_SECONDS="1", AMEND_LOG_LEVEL="info"
    ) as server:
        for method, path in (
            ("POST", "/graphql"),
            ("POST", f"/1/ce/users?key={keys['api_key']}"),
            ("POST", f"/api/user/v1/login?key={keys['api_key']}"),
        ):
            started = time.monotonic()
            reader, writer = await _partial(server, path, method)
            answer = await asyncio.wait_for(reader.read(), timeout=10)  # read to the close
            writer.close()
            assert answer.startswith(b"HTTP/1.1 408"), answer
            assert time.monotonic() - started < 5
        metrics = await _metrics(server)
    assert _count(metrics, "/graphql", "4xx") == 1
    assert "5xx" not in metrics
    assert _logged_statuses(log) == [408, 408, 408]


async def test_a_client_that_leaves_before_sending_its_body_is_not_a_server_error(
    tmp_path: Path, db: TestDB
) -> None:
    log = tmp_path / "server.log"
    with serve(tmp_path, db.url, log=log, AMEND_LOG_LEVEL="info") as server:
        for _ in range(5):
            _reader, writer = await _partial(server, "/graphql")
            writer.close()
            await writer.wait_closed()
        await asyncio.sleep(0.5)
        metrics = await _metrics(server)
    assert _count(metrics, "/graphql", "4xx") == 5
    assert "5xx" not in metrics
    assert _logged_statuses(log) == [499] * 5
    assert "Traceback" not in log.read_text()
