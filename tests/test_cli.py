"""The `amend` command, run as a real process."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

from api.security import keys
from tests.conftest import CHEAP_ARGON2, SECRET

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2)
    env["AMEND_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    env["AMEND_SECRET_KEY"] = SECRET
    return env


def _amend(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_project_create_json_prints_the_documented_keys(tmp_path: Path) -> None:
    out = _amend(
        tmp_path,
        "project",
        "create",
        "shop",
        "--origin",
        "https://shop.example.com",
        "--deny-no-origin",
        "--plan",
        "business",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"id", "name", "api_key", "master_key", "plan", "allowed_origins", "endpoints"} <= set(
        data
    )
    assert data["name"] == "shop"
    assert data["plan"] == "business"
    assert data["allowed_origins"] == ["https://shop.example.com"]
    assert data["endpoints"] == ["users"]
    # Only the digest is stored: the key never reaches the database file.
    assert data["master_key"].encode() not in (tmp_path / "cli.db").read_bytes()


def test_duplicate_project_name_fails_cleanly(tmp_path: Path) -> None:
    assert _amend(tmp_path, "project", "create", "shop").returncode == 0
    out = _amend(tmp_path, "project", "create", "shop")
    assert out.returncode != 0
    assert "exists" in out.stderr
    assert "Traceback" not in out.stderr


def test_endpoint_create_adds_a_pool(tmp_path: Path) -> None:
    assert _amend(tmp_path, "project", "create", "shop").returncode == 0
    out = _amend(tmp_path, "endpoint", "create", "--project", "shop", "staff", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == "staff"
    bad = _amend(tmp_path, "endpoint", "create", "--project", "shop", "Bad Name")
    assert bad.returncode != 0


def test_project_rotate_keys_replaces_both_keys(tmp_path: Path) -> None:
    out = _amend(tmp_path, "project", "create", "shop", "--json")
    assert out.returncode == 0, out.stderr
    before = json.loads(out.stdout)
    out = _amend(tmp_path, "project", "rotate-keys", "shop", "--json")
    assert out.returncode == 0, out.stderr
    after = json.loads(out.stdout)
    assert (after["id"], after["name"], after["endpoints"]) == (before["id"], "shop", ["users"])
    assert after["api_key"] != before["api_key"]
    assert after["master_key"] != before["master_key"]
    with sqlite3.connect(tmp_path / "cli.db") as conn:
        stored = conn.execute("SELECT api_key_digest, master_key_digest FROM projects").fetchall()
    assert stored == [(keys.digest(after["api_key"]), keys.digest(after["master_key"]))]
    missing = _amend(tmp_path, "project", "rotate-keys", "nope")
    assert missing.returncode != 0 and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    out = _amend(tmp_path, "migrate")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "cli.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_demo_prints_keys_and_answers_graphql(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--dev", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("GraphQL"):
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/graphql" in text
        api_key = next(ln.split()[2] for ln in lines if ln.startswith("api key"))
        assert "master key" in text
        for _ in range(100):
            try:
                r = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={
                        "query": "mutation($i: SignUpInput!) "
                        "{ signUp(input: $i) { errors { code } } }",
                        "variables": {"i": {"username": "ada", "password": "Zght943!x"}},
                    },
                    headers={"X-API-Key": api_key},
                    timeout=5,
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200
        assert r.json() == {"data": {"signUp": {"errors": []}}}
        ide = httpx.get(f"http://127.0.0.1:{port}/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200 and "graphiql" in ide.text.lower()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()
