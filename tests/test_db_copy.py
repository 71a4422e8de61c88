"""`amend db copy --to URL` (SPEC §12): SQLite -> PostgreSQL -> SQLite, each copy then served.

After a copy an instance on the target, with the same secret key, accepts the same API and
master keys, passwords and tokens issued before the copy, and holds the same audit history
and queued notices. A target that already holds data is refused and left as it was.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select

from api.store import Database
from api.store.tables import metadata
from scripts import pgcluster
from tests.conftest import PASSWORD
from tests.servers import amend, create_project, serve, server_env

NEW_EMAIL = "ann.new@example.com"


def _counts(url: str) -> dict[str, int]:
    async def run() -> dict[str, int]:
        db = Database(url)
        try:
            async with db.engine.connect() as conn:
                return {
                    t.name: int(
                        (await conn.execute(select(func.count()).select_from(t))).scalar_one()
                    )
                    for t in metadata.sorted_tables
                }
        finally:
            await db.dispose()

    return asyncio.run(run())


def _copy(cwd: Path, source: str, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", "db", "copy", "--to", target],
        cwd=cwd,
        env=server_env(source),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _populate(cwd: Path, url: str) -> tuple[dict[str, str], str, str]:
    """A project, a user whose email changed (audit, a queued notice, revoked sessions) and a
    token issued after that."""
    keys = create_project(cwd, url)
    with serve(cwd, url) as server, httpx.Client(base_url=server.base_url, timeout=10) as c:
        r = c.post(
            "/1/ce/users",
            params={"key": keys["api_key"]},
            json={"username": "ann", "email": "ann@example.com", "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        unique_id = r.json()["uniqueId"]
        r = c.put(
            "/api/user/v1/update",
            json={"eml": NEW_EMAIL},
            headers={"X-Access-Token": r.headers["authorization"].removeprefix("Bearer ")},
        )
        assert r.json()["code"] == 0, r.text
        r = c.post(
            "/api/user/v1/login",
            params={"key": keys["api_key"]},
            json={"eml": NEW_EMAIL, "pwd": PASSWORD},
        )
        token = r.json()["result"]["token"]
    return keys, unique_id, token


def _assert_served(cwd: Path, url: str, keys: dict[str, str], unique_id: str, token: str) -> None:
    with serve(cwd, url) as server, httpx.Client(base_url=server.base_url, timeout=10) as c:
        r = c.get("/me", headers={"Authorization": f"Bearer {token}"})  # issued before the copy
        assert r.status_code == 200, r.text
        r = c.get(
            "/1/ce/users",
            params={"key": keys["api_key"], "uniqueId": unique_id, "masterKey": keys["master_key"]},
        )
        assert r.status_code == 200, r.text
        r = c.post(
            "/api/user/v1/login",
            params={"key": keys["api_key"]},
            json={"eml": NEW_EMAIL, "pwd": PASSWORD},
        )
        assert r.json()["code"] == 0, r.text
    notices = json.loads(amend(cwd, url, "outbox", "--json"))
    assert [n["kind"] for n in notices] == ["credentials_changed"], notices


def test_copy_to_postgres_and_back_keeps_keys_passwords_tokens_audit_and_notices(
    tmp_path: Path,
) -> None:
    first = f"sqlite+aiosqlite:///{tmp_path / 'first.db'}"
    back = f"sqlite+aiosqlite:///{tmp_path / 'back.db'}"
    keys, unique_id, token = _populate(tmp_path, first)
    source_counts = _counts(first)
    assert source_counts["audit_events"] > 0 and source_counts["outbox"] > 0
    with pgcluster.cluster() as pg:
        done = _copy(tmp_path, first, pg.url)
        assert done.returncode == 0, done.stderr
        summary = dict(line.split()[:2] for line in done.stdout.splitlines() if "rows" in line)
        assert summary["audit_events"] == str(source_counts["audit_events"])
        assert _counts(pg.url) == source_counts
        _assert_served(tmp_path, pg.url, keys, unique_id, token)

        after_serving = _counts(pg.url)
        refused = _copy(tmp_path, first, pg.url)
        assert refused.returncode != 0
        assert "already holds data" in refused.stderr
        assert _counts(pg.url) == after_serving

        done = _copy(tmp_path, pg.url, back)
        assert done.returncode == 0, done.stderr
        assert _counts(back) == after_serving
    _assert_served(tmp_path, back, keys, unique_id, token)
