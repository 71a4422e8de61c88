""" "This wasn't me" (reverting an email change) and email verification (SPEC §11), end to end
through the API and a real SMTP server."""

from __future__ import annotations

import re

import httpx
import pytest

import tests.recovery as fixtures
from api.core.clock import now_ms
from api.services.container import Services
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import ME, UPDATE_CREDENTIALS, Account, gql, sign_in, sign_up
from tests.mail import queued, token_in
from tests.recovery import (
    EMAIL,
    NEW_EMAIL,
    NEW_PASSWORD,
    RESET,
    REVERT,
    REVERT_URL,
    SEND_VERIFICATION,
    URLS,
    VERIFY,
    Sink,
    alive,
    call,
    delivered_token,
    every_text,
    signs_in,
)

# The recovery tests' fixtures (pytest finds fixtures by module-level name).
jane = fixtures.jane
settings_env = fixtures.settings_env
sink = fixtures.sink
make_sink = fixtures.make_sink

# --------------------------------------------------------------------------------------------
# "This wasn't me"
# --------------------------------------------------------------------------------------------


async def change_email(client: httpx.AsyncClient, account: Account, email: str) -> None:
    body = await gql(client, UPDATE_CREDENTIALS, {"input": {"email": email}}, headers=account.auth)
    assert body["data"]["updateCredentials"]["errors"] == [], body


async def test_revert_email_change_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = await delivered_token(services, sink, EMAIL, "Your email changed")
    assert token not in every_text(db)
    # The attacker signs in with the new address and opens a session.
    attacker_token = (await sign_in(client, project.api_key, NEW_EMAIL, PASSWORD))["data"][
        "signIn"
    ]["token"]
    assert attacker_token

    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert payload["errors"] == []
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}
    assert payload["reauthenticationRequired"] is True
    body = await gql(client, ME, headers={"Authorization": f"Bearer {attacker_token}"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    [(action,)] = db.sql("SELECT action FROM audit_events WHERE action = 'revert_email_change'")
    assert action == "revert_email_change"
    # A reset link goes to the restored address, so the owner takes the password back too.
    reset_token = await delivered_token(services, sink, EMAIL, "Reset your")
    payload = await call(
        client, RESET, {"input": {"token": reset_token, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert payload["errors"] == []
    assert await signs_in(client, project, EMAIL, NEW_PASSWORD)

    again = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_CODE", ["token"])]


async def test_revert_refused_when_another_account_took_the_old_address(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = token_in(queued(db, kind="email_change_revert", to=EMAIL)[0])
    await sign_up(client, project.api_key, "mallory", email=EMAIL)
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [e["code"] for e in payload["errors"]] == ["EMAIL_TAKEN"]
    assert db.sql("SELECT email FROM users WHERE username = 'jane'") == [(NEW_EMAIL,)]


async def test_revert_token_expires(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = token_in(queued(db, kind="email_change_revert", to=EMAIL)[0])
    db.sql("UPDATE recovery_tokens SET expires_at = ?", (now_ms() - 1,))
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]


@pytest.mark.parametrize("settings_env", [{**URLS, "AMEND_EMAIL_CHANGE": "verify"}], indirect=True)
async def test_verified_email_change_mails_a_revert_link_to_the_old_address(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    code = token_in_code(queued(db, kind="email_change_code", to=NEW_EMAIL)[0])
    body = await gql(
        client,
        "mutation($c: String!) { confirmEmailChange(code: $c) { errors { code } } }",
        {"c": code},
        headers=jane.auth,
    )
    assert body["data"]["confirmEmailChange"]["errors"] == [], body
    [notice] = queued(db, kind="email_change_revert", to=EMAIL)
    token = token_in(notice)
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}


async def test_rest_email_change_mails_a_revert_link_to_the_old_address(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    r = await client.put(
        "/api/user/v1/update", json={"eml": NEW_EMAIL}, headers={"X-Access-Token": jane.token}
    )
    assert r.json()["code"] == 0, r.text
    [notice] = queued(db, kind="email_change_revert", to=EMAIL)
    assert REVERT_URL.replace("{token}", token_in(notice)) in notice


def token_in_code(body: str) -> str:

    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


# --------------------------------------------------------------------------------------------
# Email verification
# --------------------------------------------------------------------------------------------


async def test_email_verification_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    sink: Sink,
) -> None:
    body = await gql(client, SEND_VERIFICATION, headers=jane.auth)
    assert body == {"data": {"sendEmailVerification": True}}
    token = await delivered_token(services, sink, EMAIL, "Confirm your")
    payload = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert payload["errors"] == []
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}
    assert payload["reauthenticationRequired"] is False
    assert await alive(client, jane)  # verifying revokes nothing
    [(action,)] = db.sql("SELECT action FROM audit_events WHERE action = 'verify_email'")
    assert action == "verify_email"
    again = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert [e["code"] for e in again["errors"]] == ["INVALID_CODE"]
    # Verified already: nothing more is mailed.
    assert (await gql(client, SEND_VERIFICATION, headers=jane.auth))["data"] == {
        "sendEmailVerification": True
    }
    assert len(queued(db, kind="email_verification")) == 1


async def test_verification_link_for_an_old_address_is_refused(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await gql(client, SEND_VERIFICATION, headers=jane.auth)
    token = token_in(queued(db, kind="email_verification")[0])
    await change_email(client, jane, NEW_EMAIL)
    payload = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]
