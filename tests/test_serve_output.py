"""Outside --dev, every line a served process writes to stdout or stderr is one JSON object."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.db import TestDB
from tests.servers import create_project, serve


def _lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.strip()]


def test_a_served_process_writes_only_json_lines(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    log = tmp_path / "serve.log"
    with (
        serve(tmp_path, db.url, "--demo", log=log, AMEND_LOG_LEVEL="debug") as server,
        httpx.Client(base_url=server.base_url, timeout=10) as c,
    ):
        c.post("/graphql", json={"query": "{ me { id } }"})  # an execution error
        c.post("/graphql", json={"query": "{ nope"})  # a syntax error
        c.post("/graphql", content=b"not json", headers={"Content-Type": "text/plain"})
        c.put("/1/ce/users", params={"key": keys["api_key"]}, json={})
    lines = _lines(log)
    records = [json.loads(line) for line in lines]  # each line parses on its own
    assert all(isinstance(r, dict) for r in records), lines
    (listening,) = [r for r in records if r.get("message") == "listening"]
    assert listening["graphql"] == f"{server.base_url}/graphql"
    assert listening["level"] == "info"
    # --demo prints its project as one JSON object, not as words.
    assert any(r.get("name") == "demo" and "api_key" in r for r in records), lines


def test_the_human_banner_is_printed_under_dev_only(tmp_path: Path, db: TestDB) -> None:
    log = tmp_path / "serve.log"
    with serve(tmp_path, db.url, "--dev", log=log, AMEND_LOG_LEVEL="info") as server:
        pass
    lines = _lines(log)
    assert f"GraphiQL   {server.base_url}/graphql" in lines
    assert f"GraphQL    POST {server.base_url}/graphql" in lines
