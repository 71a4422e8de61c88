"""The dev-mode playground, driven in headless Chromium: sign in, run updateMe, subscribe to
meUpdated and see an event arrive, read the page."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import PASSWORD
from tests.db import BACKEND, TestDB
from tests.servers import create_project, serve

ROOT = Path(__file__).resolve().parent.parent


def playground_signs_in_and_updates_me(tmp_path: Path, db: TestDB) -> None:
    subprocess.run([str(ROOT / "scripts" / "e2e-setup")], check=True, timeout=600)
    keys = create_project(tmp_path, db.url)
    with serve(tmp_path, db.url, "--dev") as server:
        r = httpx.post(
            f"{server.base_url}/1/ce/users",
            params={"key": keys["api_key"]},
            json={"username": "ada", "password": PASSWORD},
        )
        assert r.status_code == 201
        page = httpx.get(f"{server.base_url}/graphql", headers={"Accept": "text/html"})
        assert "unpkg.com" not in page.text and "cdn" not in page.text.lower()
        out = subprocess.run(
            ["node", "graphiql.mjs", server.base_url, keys["api_key"], "ada", PASSWORD],
            cwd=ROOT / "tests" / "e2e",
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert '"username": "ada"' in result["signIn"]
    assert '"firstName": "Ada"' in result["updateMe"]
    assert '"version": 2' in result["updateMe"]
    assert '"meUpdated"' in result["subscription"]
    assert '"lastName": "Sub' in result["subscription"]
    assert '"firstName": "Ada"' in result["subscription"]
    assert {"name": "access_token", "httpOnly": True} in result["cookies"]
    assert result["failedRequests"] == []  # every asset came from Amend itself


# The browser does not care about the database backend: run it in the SQLite pass only.
if BACKEND == "sqlite":
    test_playground_signs_in_and_updates_me = playground_signs_in_and_updates_me
