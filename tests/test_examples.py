"""The examples a front end starts from: operations valid against schema.graphql, and the
Python (gql) and TypeScript (graphql-request, with generated types) clients work for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from graphql import build_schema, parse, validate

from tests.conftest import PASSWORD
from tests.db import BACKEND, TestDB
from tests.servers import create_project, serve

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = sorted((ROOT / "examples" / "operations").glob("*.graphql"))


def test_there_are_example_operations_for_every_mutation_a_front_end_uses() -> None:
    names = {p.stem for p in OPERATIONS}
    assert {"signIn", "signUp", "me", "updateMe", "updateCredentials", "meUpdated"} <= names
    recovery = {
        "requestPasswordReset",
        "resetPassword",
        "revertEmailChange",
        "sendEmailVerification",
        "verifyEmail",
    }
    assert recovery <= names


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: p.name)
def test_example_operation_validates_against_the_checked_in_schema(path: Path) -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    errors = validate(schema, parse(path.read_text()))
    assert errors == [], [e.message for e in errors]


def _sign_up(base_url: str, key: str, username: str) -> None:
    r = httpx.post(
        f"{base_url}/1/ce/users",
        params={"key": key},
        json={"username": username, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text


def clients_work_against_a_served_instance(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    subprocess.run([str(ROOT / "scripts" / "codegen-check")], check=True, timeout=600)
    with serve(tmp_path, db.url) as server:
        _sign_up(server.base_url, keys["api_key"], "ada")
        out = subprocess.run(
            [
                sys.executable,
                str(ROOT / "examples" / "python" / "client.py"),
                server.base_url,
                keys["api_key"],
                "ada",
                PASSWORD,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        python = json.loads(out.stdout)
        assert python["errors"] == []
        assert python["me"]["lastName"] == "Hopper"
        assert python["me"]["data"] == {"lang": "en"}

        _sign_up(server.base_url, keys["api_key"], "grace")
        out = subprocess.run(
            ["node", "dist/client.js", server.base_url, keys["api_key"], "grace", PASSWORD],
            cwd=ROOT / "examples" / "typescript",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        typescript = json.loads(out.stdout)
        assert typescript == {
            "errors": [],
            "firstName": "Grace",
            "version": 2,
            "data": {"theme": "dark"},
        }


# The clients do not care about the database backend: run them in the SQLite pass only.
if BACKEND == "sqlite":
    test_clients_work_against_a_served_instance = clients_work_against_a_served_instance
