"""A served process at DEBUG level never logs a password, token, key, variable or query."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.db import TestDB
from tests.servers import create_project, serve

PASSWORD = "Canary7Pass-q1"
NEW_PASSWORD = "Canary8Pass-w2"
WRONG = "Canary9Wrong-e3"


def test_full_scenario_leaves_no_secret_in_the_logs(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    log = tmp_path / "server.log"
    secrets = {PASSWORD, NEW_PASSWORD, WRONG, keys["api_key"], keys["master_key"]}
    with serve(tmp_path, db.url, "--dev", log=log, AMEND_LOG_LEVEL="debug") as server:
        base = server.base_url
        with httpx.Client(base_url=base, timeout=10) as c:
            r = c.post(
                "/1/ce/users",
                params={"key": keys["api_key"]},
                json={"username": "ann", "password": PASSWORD, "email": "ann@example.com"},
            )
            token = r.headers["authorization"].removeprefix("Bearer ")
            secrets.add(token)
            c.post(
                "/graphql",
                json={
                    "query": "mutation($i: SignInInput!) { signIn(input: $i) { token } }",
                    "variables": {"i": {"identifier": "ann", "password": WRONG}},
                },
                headers={"X-API-Key": keys["api_key"]},
            )
            # Inline literals and a bad variable: GraphQL errors quote input values.
            c.post(
                "/graphql",
                json={
                    "query": 'mutation { signIn(input: {identifier: "ann", password: "'
                    + WRONG
                    + '", bogus: 1}) { token } }'
                },
                headers={"X-API-Key": keys["api_key"]},
            )
            c.get(
                "/1/ce/users",
                params={
                    "key": keys["api_key"],
                    "uniqueId": r.json()["uniqueId"],
                    "masterKey": keys["master_key"],
                },
            )
            c.put(
                "/api/user/v1/update",
                json={"pwd": NEW_PASSWORD},
                headers={"X-Access-Token": token},
            )
            c.patch("/me", json={"first_name": "Ann"}, headers={"Authorization": f"Bearer {token}"})
    text = log.read_text(errors="replace")
    assert "Uvicorn running" in text  # the log was captured at all
    leaked = sorted(s for s in secrets if s in text)
    assert leaked == []
    assert "signIn(input" not in text  # no query text
    assert "masterKey=" not in text  # no query strings
