"""The stock GraphQL clients, unmodified, against a served process: the npm graphql-ws
client, Apollo Client (HTTP and GraphQLWsLink) and graphql-http's conformance audits
(tests/e2e/clients.mjs drives them; scripts/e2e-setup installs the pinned packages)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD
from tests.db import TestDB
from tests.servers import Server, create_project, serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _npm_packages() -> None:
    subprocess.run([str(ROOT / "scripts" / "e2e-setup")], check=True, timeout=600)


def _node(scenario: str, server: Server, *args: str) -> Any:
    out = subprocess.run(
        ["node", "clients.mjs", scenario, server.base_url, *args],
        cwd=ROOT / "tests" / "e2e",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _signed_up(server: Server, keys: dict[str, str], username: str = "ada") -> list[str]:
    r = httpx.post(
        f"{server.base_url}/1/ce/users",
        params={"key": keys["api_key"]},
        json={"username": username, "password": PASSWORD},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    return [keys["api_key"], username, PASSWORD]


def test_the_graphql_ws_client_streams_me_updated_until_sign_out(
    tmp_path: Path, db: TestDB
) -> None:
    keys = create_project(tmp_path, db.url)
    with serve(tmp_path, db.url) as server:
        seen = _node("graphql-ws", server, *_signed_up(server, keys))
    assert seen["first"]["firstName"] == "Ada"
    assert seen["first"]["version"] >= 2
    assert seen["end"] == "complete"  # the sign-out revoked the session: the stream ended
    assert seen["closeCodes"] == [4403, 4403]  # revoked, then not a token at all


def test_apollo_client_queries_mutates_and_subscribes(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    with serve(tmp_path, db.url) as server:
        seen = _node("apollo", server, *_signed_up(server, keys))
    assert seen["query"]["username"] == "ada"
    assert seen["query"]["version"] == 1
    assert seen["mutation"]["errors"] == []
    assert seen["mutation"]["user"]["version"] == 2
    assert seen["event"]["meUpdated"]["firstName"] == "Grace"
    assert seen["event"]["meUpdated"]["version"] >= 3


# These audits probe with `query Type($name: String!) { __type(name: $name) { name } }`: with
# introspection off that is refused by validation, whatever the transport does.
NEEDS_INTROSPECTION = {
    "MUST allow map {variables} parameter when accepting application/json",
    "SHOULD allow map {variables} parameter when accepting application/graphql-response+json",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/json",
    "MAY allow URL-encoded JSON string {variables} parameter in GETs when accepting "
    "application/graphql-response+json",
}


def _audits(server: Server) -> dict[str, dict[str, Any]]:
    results = _node("audit", server)
    assert len(results) > 20
    return {r["name"]: r for r in results}


def test_every_graphql_over_http_audit_passes_with_introspection_on(
    tmp_path: Path, db: TestDB
) -> None:
    with serve(tmp_path, db.url, AMEND_INTROSPECTION="true") as server:
        audits = _audits(server)
    failing = {name: r for name, r in audits.items() if r["status"] != "ok"}
    assert failing == {}, json.dumps(failing)


def test_every_graphql_over_http_audit_not_probing_with_introspection_passes_without_it(
    tmp_path: Path, db: TestDB
) -> None:
    with serve(tmp_path, db.url, AMEND_INTROSPECTION="false") as server:
        audits = _audits(server)
    assert audits.keys() >= NEEDS_INTROSPECTION
    failing = {name: r for name, r in audits.items() if r["status"] != "ok"}
    assert failing.keys() == NEEDS_INTROSPECTION, json.dumps(failing)
