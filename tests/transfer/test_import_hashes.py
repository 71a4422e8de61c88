"""Imported password hashes sign in through every route and are upgraded to argon2id."""

from __future__ import annotations

import httpx
import pytest

from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import UPDATE_CREDENTIALS, gql, sign_in
from tests.transfer.helpers import FORMATS, PASSWORD, jsonl, problems, run_import, stored


@pytest.mark.parametrize("fmt", sorted(FORMATS))
async def test_every_accepted_format_signs_in_once_upgraded_to_argon2id(
    fmt: str, client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    old = FORMATS[fmt](PASSWORD)
    report = await run_import(services, jsonl({"username": "mover", "password_hash": old}))
    assert (report.imported, report.invalid) == (1, [])
    assert stored(db, "mover")["hash"] == old

    wrong = await sign_in(client, project.api_key, "mover", "Wrong1pass")
    assert wrong["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    assert stored(db, "mover")["hash"] == old  # a failed check changes nothing

    body = await sign_in(client, project.api_key, "mover", PASSWORD)
    assert body["data"]["signIn"]["errors"] == [], body
    after = stored(db, "mover")
    assert after["hash"].startswith("$argon2id$v=19$m=64,t=1,p=1$")
    assert after["version"] == 1  # a rehash is not a change of the user
    again = await sign_in(client, project.api_key, "mover", PASSWORD)
    assert again["data"]["signIn"]["errors"] == []
    assert stored(db, "mover")["hash"] == after["hash"]  # upgraded once


async def test_both_rest_logins_upgrade_an_imported_hash(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    lines = jsonl(
        {"username": "ce", "password_hash": FORMATS["bcrypt_2b"](PASSWORD)},
        {
            "username": "v1",
            "email": "v1@example.com",
            "password_hash": FORMATS["django_pbkdf2_sha256"](PASSWORD),
        },
    )
    assert (await run_import(services, lines)).imported == 2
    ce = await client.post(
        "/1/ce/users/login",
        params={"key": project.api_key},
        json={"username": "ce", "password": PASSWORD},
    )
    assert ce.status_code == 200, ce.text
    assert stored(db, "ce")["hash"].startswith("$argon2id$")
    v1 = await client.post(
        "/api/user/v1/login",
        params={"key": project.api_key},
        json={"eml": "v1@example.com", "pwd": PASSWORD},
    )
    assert v1.json()["code"] == 0, v1.text
    assert stored(db, "v1")["hash"].startswith("$argon2id$")


async def test_current_password_check_upgrades_an_imported_hash(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    bcrypt_hash = FORMATS["bcrypt_2b"](PASSWORD)
    await run_import(services, jsonl({"username": "kim", "password_hash": bcrypt_hash}))
    token = (await sign_in(client, project.api_key, "kim", PASSWORD))["data"]["signIn"]["token"]
    # The session outlives the sign-in's upgrade; put the imported hash back to see the
    # currentPassword check upgrade it too.
    db.sql("UPDATE users SET password_hash = ? WHERE username = ?", (bcrypt_hash, "kim"))
    body = await gql(
        client,
        UPDATE_CREDENTIALS,
        {"input": {"email": "kim@example.com", "currentPassword": PASSWORD}},
        headers={"X-API-Key": project.api_key, "Authorization": f"Bearer {token}"},
    )
    assert body["data"]["updateCredentials"]["errors"] == [], body
    after = stored(db, "kim")
    assert after["email"] == "kim@example.com"
    assert after["hash"].startswith("$argon2id$")
    signed = await sign_in(client, project.api_key, "kim@example.com", PASSWORD)
    assert signed["data"]["signIn"]["errors"] == []


@pytest.mark.parametrize(
    "value",
    [
        "plaintext",
        "$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        "$2x$04$abcdefghijklmnopqrstuuQ3nJ1w6bCrLh9C3F7z5R6cN5U0d8p2e",
        "$2b$04$tooshort",
        "$6$rounds=1000$salt$not-base64!",
        "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "md5$abc$def",
        "$99$whatever",
        "$pbkdf2-sha256$" + "1" * 300,
        12345,
    ],
)
async def test_unsupported_hashes_are_refused(
    value: object, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    report = await run_import(services, jsonl({"username": "x", "password_hash": value}))
    assert problems(report) == [(1, "password_hash", "UNSUPPORTED_HASH")]
    assert report.imported == 0


async def test_a_user_imported_without_a_password_cannot_sign_in(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    await run_import(services, jsonl({"username": "nopass"}))
    assert stored(db, "nopass")["hash"] == ""
    body = await sign_in(client, project.api_key, "nopass", "")
    assert body["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    body = await sign_in(client, project.api_key, "nopass", PASSWORD)
    assert body["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_plain_password_lines_are_stored_as_argon2id(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    report = await run_import(services, jsonl({"username": "plain", "password": PASSWORD}))
    assert report.imported == 1
    assert stored(db, "plain")["hash"].startswith("$argon2id$")
    body = await sign_in(client, project.api_key, "plain", PASSWORD)
    assert body["data"]["signIn"]["errors"] == []
