"""Verified email change (SPEC §4, §8, §9; AMEND_EMAIL_CHANGE=verify).

`updateCredentials` with an email holds it as pending and mails a 6-digit code (15 minutes,
5 tries) to the new address through the outbox; `confirmEmailChange(code)` applies it, marks it
verified and revokes every session. The credentials REST API (§7.2) stays immediate.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest

from api.core.clock import now_ms
from api.services.credentials import CODE_TRIES, CODE_TTL_MS
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import (
    ME,
    UPDATE_CREDENTIALS,
    USER_FIELDS,
    Account,
    cookie_cleared,
    error_codes,
    gql,
    read_me,
    sign_in,
    sign_up,
    top_error,
)
from tests.mail import opened, queued

EMAIL = "jane@example.com"
NEW_EMAIL = "jane.new@example.com"
OTHER_EMAIL = "jane.other@example.com"
NEW_PASSWORD = "N3wSecret42x"

CONFIRM = f"""
mutation($code: String!) {{
  confirmEmailChange(code: $code) {{
    user {{ {USER_FIELDS} }} reauthenticationRequired pendingEmail
    errors {{ code message field }}
  }}
}}"""
AUDIT = "query { auditLog { edges { node { action fields actor strategy } } } }"


@pytest.fixture
def settings_env() -> dict[str, str]:
    return {"AMEND_EMAIL_CHANGE": "verify"}


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


async def request_change(
    client: httpx.AsyncClient, account: Account, input: dict[str, Any]
) -> tuple[httpx.Response, dict[str, Any]]:
    r = await client.post(
        "/graphql",
        json={"query": UPDATE_CREDENTIALS, "variables": {"input": input}},
        headers=account.auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    payload = body["data"]["updateCredentials"]
    assert isinstance(payload, dict)
    return r, payload


async def confirm(
    client: httpx.AsyncClient, token: str, code: str
) -> tuple[httpx.Response, dict[str, Any]]:
    r = await client.post(
        "/graphql",
        json={"query": CONFIRM, "variables": {"code": code}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "errors" not in body, body
    payload = body["data"]["confirmEmailChange"]
    assert isinstance(payload, dict)
    return r, payload


def notices(db: TestDB) -> list[tuple[str, str, str]]:
    """(to, kind, body) of every queued notice, oldest first."""
    return [
        (to, kind, opened(body, sealed))
        for to, kind, body, sealed in db.sql(
            'SELECT "to", kind, body, sealed FROM outbox ORDER BY id'
        )
    ]


def code_sent_to(db: TestDB, address: str) -> str:
    """The code of the newest code notice to `address` (read from its body)."""
    rows = queued(db, kind="email_change_code", to=address)
    assert rows, f"no code was sent to {address}"
    match = re.search(r"\b(\d{6})\b", rows[0])
    assert match, rows[0]
    return match.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def pending(db: TestDB) -> list[tuple[Any, ...]]:
    return db.sql("SELECT new_email, tries, expires_at, created_at FROM email_changes")


async def session_alive(client: httpx.AsyncClient, token: str) -> bool:
    body = await gql(client, ME, headers={"Authorization": f"Bearer {token}"})
    if "errors" in body:
        assert top_error(body)["code"] == "UNAUTHENTICATED", body
        return False
    return True


async def new_token(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str, password: str = PASSWORD
) -> str | None:
    body = await sign_in(client, project.api_key, identifier, password)
    assert "errors" not in body, body
    token = body["data"]["signIn"]["token"]
    return token if isinstance(token, str) else None


async def audit(client: httpx.AsyncClient, token: str) -> list[tuple[str, list[str]]]:
    body = await gql(client, AUDIT, headers={"Authorization": f"Bearer {token}"})
    assert "errors" not in body, body
    return [(e["node"]["action"], e["node"]["fields"]) for e in body["data"]["auditLog"]["edges"]]


# --------------------------------------------------------------------------------------------
# Requesting a change
# --------------------------------------------------------------------------------------------


async def test_request_holds_the_email_and_mails_a_code_to_the_new_address(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    before = await read_me(client, jane.token)
    started = now_ms()
    r, payload = await request_change(client, jane, {"email": NEW_EMAIL})
    assert payload["errors"] == []
    assert payload["pendingEmail"] == NEW_EMAIL
    assert payload["reauthenticationRequired"] is False
    assert payload["user"]["email"] == EMAIL
    assert not cookie_cleared(r)

    # Nothing about the account changed; the session is still valid.
    assert await read_me(client, jane.token) == before
    assert await new_token(client, project, EMAIL) is not None
    assert await new_token(client, project, NEW_EMAIL) is None

    # One notice: the code, to the NEW address; the old one is not told yet.
    [(to, kind, body)] = notices(db)
    assert (to, kind) == (NEW_EMAIL, "email_change_code")
    assert PASSWORD not in body
    code = code_sent_to(db, NEW_EMAIL)
    assert len(code) == 6

    [(new_email, tries, expires_at, created_at)] = pending(db)
    assert (new_email, tries) == (NEW_EMAIL, 0)
    assert expires_at - created_at == CODE_TTL_MS == 15 * 60 * 1000
    assert started <= created_at <= now_ms()
    # Stored as a keyed digest, never the code itself.
    [(digest,)] = db.sql("SELECT code_digest FROM email_changes")
    assert code not in digest

    assert ("update_credentials", ["pending_email"]) in await audit(client, jane.token)


async def test_confirm_applies_the_change_and_revokes_every_session(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    second = await new_token(client, project, "jane")
    assert second is not None
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    version = (await read_me(client, jane.token))["version"]

    r, payload = await confirm(client, jane.token, code)
    assert payload["errors"] == []
    assert payload["reauthenticationRequired"] is True
    assert payload["pendingEmail"] is None
    user = payload["user"]
    assert (user["email"], user["emailVerified"]) == (NEW_EMAIL, True)
    assert user["version"] == version + 1
    assert cookie_cleared(r)

    # Every session is revoked, the current one included.
    assert not await session_alive(client, jane.token)
    assert not await session_alive(client, second)
    assert pending(db) == []

    # The old address is told (after the code notice to the new one).
    assert [(to, kind) for to, kind, _ in notices(db)] == [
        (NEW_EMAIL, "email_change_code"),
        (EMAIL, "email_change_revert"),
    ]
    assert PASSWORD not in notices(db)[1][2]

    # The new address signs in, the old one does not.
    assert await new_token(client, project, EMAIL) is None
    token = await new_token(client, project, NEW_EMAIL)
    assert token is not None
    me = await read_me(client, token)
    assert (me["email"], me["emailVerified"]) == (NEW_EMAIL, True)

    events = await audit(client, token)
    assert events[0] == ("confirm_email_change", ["email"])  # newest first
    assert ("update_credentials", ["pending_email"]) in events
    [(actor,)] = db.sql("SELECT actor FROM audit_events WHERE action = 'confirm_email_change'")
    assert actor == "user"

    # The code is spent.
    _, payload = await confirm(client, token, code)
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert (await read_me(client, token))["email"] == NEW_EMAIL


async def test_wrong_code_changes_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    before = await read_me(client, jane.token)

    r, payload = await confirm(client, jane.token, wrong(code))
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert payload["user"] is None
    assert not cookie_cleared(r)
    assert await read_me(client, jane.token) == before
    assert await new_token(client, project, NEW_EMAIL) is None
    assert [(e, t) for e, t, _, _ in pending(db)] == [(NEW_EMAIL, 1)]  # one try spent
    assert len(notices(db)) == 1  # no notice for a failed try

    # Still pending while tries remain: the right code works (surrounding blanks are fine).
    _, payload = await confirm(client, jane.token, f" {code} ")
    assert payload["errors"] == []
    assert payload["user"]["email"] == NEW_EMAIL


@pytest.mark.parametrize("bad", ["", "abc", "12345", "1234567", "12 345", "x" * 200])
async def test_malformed_code_is_an_invalid_code(
    bad: str, client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    before = await read_me(client, jane.token)
    _, payload = await confirm(client, jane.token, bad)
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert await read_me(client, jane.token) == before


async def test_expired_code_is_refused(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    before = await read_me(client, jane.token)
    db.sql("UPDATE email_changes SET expires_at = ?", (now_ms() - 1,))

    _, payload = await confirm(client, jane.token, code)
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert await read_me(client, jane.token) == before
    assert await session_alive(client, jane.token)
    assert await new_token(client, project, NEW_EMAIL) is None


async def test_code_near_the_end_of_its_lifetime_still_works(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    db.sql(
        "UPDATE email_changes SET created_at = created_at - ?, expires_at = ?",
        (CODE_TTL_MS - 60_000, now_ms() + 60_000),
    )
    _, payload = await confirm(client, jane.token, code)
    assert payload["errors"] == []
    assert payload["user"]["email"] == NEW_EMAIL


@pytest.mark.parametrize("wrong_tries", [CODE_TRIES - 1, CODE_TRIES])
async def test_five_wrong_tries_spend_the_code(
    wrong_tries: int,
    client: httpx.AsyncClient,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
) -> None:
    assert CODE_TRIES == 5
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    for n in range(wrong_tries):
        _, payload = await confirm(client, jane.token, f"{(int(code) + 1 + n) % 1_000_000:06d}")
        assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    _, payload = await confirm(client, jane.token, code)
    if wrong_tries < CODE_TRIES:
        assert payload["errors"] == []
        assert payload["user"]["email"] == NEW_EMAIL
        return
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert (await read_me(client, jane.token))["email"] == EMAIL
    assert await new_token(client, project, NEW_EMAIL) is None
    # A new request starts over with a new code and fresh tries.
    await request_change(client, jane, {"email": NEW_EMAIL})
    _, payload = await confirm(client, jane.token, code_sent_to(db, NEW_EMAIL))
    assert payload["errors"] == []


async def test_concurrent_guesses_get_five_tries_in_all(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    """Parallel guesses cannot all pass the tries check before any is counted."""
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    guesses = [f"{(int(code) + 1 + n) % 1_000_000:06d}" for n in range(12)]
    results = await asyncio.gather(*(confirm(client, jane.token, g) for g in guesses))
    assert all(error_codes(p) == [("INVALID_CODE", ["code"])] for _, p in results)
    _, payload = await confirm(client, jane.token, code)
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    assert (await read_me(client, jane.token))["email"] == EMAIL


async def test_concurrent_confirmations_apply_once(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    tokens = [jane.token]
    for _ in range(3):
        token = await new_token(client, project, "jane")
        assert token is not None
        tokens.append(token)
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    bodies = await asyncio.gather(
        *(
            gql(client, CONFIRM, {"code": code}, headers={"Authorization": f"Bearer {t}"})
            for t in tokens
        )
    )
    applied = 0
    for body in bodies:
        if "errors" in body:  # its session was revoked before it was authenticated
            assert top_error(body)["code"] == "UNAUTHENTICATED", body
            continue
        payload = body["data"]["confirmEmailChange"]
        if payload["errors"] == []:
            applied += 1
        else:  # authenticated before the first one committed, then found nothing pending
            assert error_codes(payload) == [("INVALID_CODE", ["code"])], body
    assert applied == 1
    kinds = [kind for _, kind, _ in notices(db)]
    assert kinds.count("email_change_revert") == 1
    [(count,)] = db.sql("SELECT COUNT(*) FROM audit_events WHERE action = 'confirm_email_change'")
    assert count == 1


async def test_no_pending_change_is_an_invalid_code(
    client: httpx.AsyncClient, jane: Account
) -> None:
    _, payload = await confirm(client, jane.token, "123456")
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]


async def test_confirm_needs_a_session(client: httpx.AsyncClient) -> None:
    body = await gql(client, CONFIRM, {"code": "123456"})
    assert top_error(body)["code"] == "UNAUTHENTICATED"


async def test_a_second_request_replaces_the_first(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    first = code_sent_to(db, NEW_EMAIL)
    _, payload = await request_change(client, jane, {"email": OTHER_EMAIL})
    assert payload["pendingEmail"] == OTHER_EMAIL
    second = code_sent_to(db, OTHER_EMAIL)
    assert [(e, t) for e, t, _, _ in pending(db)] == [(OTHER_EMAIL, 0)]

    if first != second:  # one chance in a million that they are equal
        _, payload = await confirm(client, jane.token, first)
        assert error_codes(payload) == [("INVALID_CODE", ["code"])]
    _, payload = await confirm(client, jane.token, second)
    assert payload["errors"] == []
    assert payload["user"]["email"] == OTHER_EMAIL
    assert await new_token(client, project, NEW_EMAIL) is None
    assert await new_token(client, project, OTHER_EMAIL) is not None


async def test_email_taken_at_request_time(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await sign_up(client, project.api_key, "john", email=NEW_EMAIL)
    before = await read_me(client, jane.token)
    for address in (NEW_EMAIL, NEW_EMAIL.upper()):
        _, payload = await request_change(client, jane, {"email": address})
        assert error_codes(payload) == [("EMAIL_TAKEN", ["email"])]
        assert payload["pendingEmail"] is None
    assert pending(db) == []
    assert notices(db) == []
    assert await read_me(client, jane.token) == before


async def test_email_taken_between_request_and_confirmation(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    await sign_up(client, project.api_key, "john", email=NEW_EMAIL)
    before = await read_me(client, jane.token)
    r, payload = await confirm(client, jane.token, code)
    assert error_codes(payload) == [("EMAIL_TAKEN", ["email"])]
    assert not cookie_cleared(r)
    assert await read_me(client, jane.token) == before
    assert [kind for _, kind, _ in notices(db)] == ["email_change_code"]


async def test_same_email_is_an_empty_update(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    _, payload = await request_change(client, jane, {"email": EMAIL.upper()})
    assert error_codes(payload) == [("EMPTY_UPDATE", None)]
    assert pending(db) == []
    assert notices(db) == []


async def test_invalid_email_is_refused_at_request_time(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    _, payload = await request_change(client, jane, {"email": "not-an-email"})
    assert [code for code, _ in error_codes(payload)] == ["INVALID_EMAIL"]
    assert pending(db) == []
    assert notices(db) == []


async def test_password_and_email_together(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    """The password applies at once (sessions revoked); the email waits for its code."""
    r, payload = await request_change(client, jane, {"email": NEW_EMAIL, "password": NEW_PASSWORD})
    assert payload["errors"] == []
    assert payload["pendingEmail"] == NEW_EMAIL
    assert payload["reauthenticationRequired"] is True
    assert payload["user"]["email"] == EMAIL
    assert cookie_cleared(r)
    assert not await session_alive(client, jane.token)

    assert await new_token(client, project, EMAIL, PASSWORD) is None
    token = await new_token(client, project, EMAIL, NEW_PASSWORD)
    assert token is not None
    assert {(to, kind) for to, kind, _ in notices(db)} == {
        (EMAIL, "credentials_changed"),  # the password change, to the current address
        (NEW_EMAIL, "email_change_code"),
    }
    assert all(NEW_PASSWORD not in body for _, _, body in notices(db))

    _, payload = await confirm(client, token, code_sent_to(db, NEW_EMAIL))
    assert payload["errors"] == []
    assert payload["user"]["email"] == NEW_EMAIL

    token = await new_token(client, project, NEW_EMAIL, NEW_PASSWORD)
    assert token is not None
    events = await audit(client, token)
    actions = [(action, sorted(fields)) for action, fields in events]
    assert actions[0] == ("confirm_email_change", ["email"])
    assert ("update_credentials", ["password"]) in actions
    assert ("update_credentials", ["pending_email"]) in actions


async def test_password_only_is_immediate(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    _, payload = await request_change(client, jane, {"password": NEW_PASSWORD})
    assert payload["errors"] == []
    assert payload["pendingEmail"] is None
    assert payload["reauthenticationRequired"] is True
    assert pending(db) == []
    assert [(to, kind) for to, kind, _ in notices(db)] == [(EMAIL, "credentials_changed")]


async def test_credentials_rest_api_stays_immediate(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    r = await client.put(
        "/api/user/v1/update", json={"eml": NEW_EMAIL}, headers={"X-Access-Token": jane.token}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"code": 0, "message": "", "result": None}
    assert pending(db) == []
    assert not await session_alive(client, jane.token)
    token = await new_token(client, project, NEW_EMAIL)
    assert token is not None
    me = await read_me(client, token)
    assert (me["email"], me["emailVerified"]) == (NEW_EMAIL, False)
    assert [(to, kind) for to, kind, _ in notices(db)] == [(EMAIL, "email_change_revert")]


async def test_rest_change_while_a_code_is_pending(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    """An immediate change (§7.2) revokes every session: the session that asked for the
    pending change can no longer confirm it over the newer address."""
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    r = await client.put(
        "/api/user/v1/update", json={"eml": OTHER_EMAIL}, headers={"X-Access-Token": jane.token}
    )
    assert r.json()["code"] == 0, r.text
    body = await gql(client, CONFIRM, {"code": code}, headers=jane.auth)
    assert top_error(body)["code"] == "UNAUTHENTICATED"
    token = await new_token(client, project, OTHER_EMAIL)
    assert token is not None
    assert (await read_me(client, token))["email"] == OTHER_EMAIL


@pytest.mark.parametrize("settings_env", [{"AMEND_EMAIL_CHANGE": "immediate"}])
async def test_immediate_mode_changes_at_once(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    r, payload = await request_change(client, jane, {"email": NEW_EMAIL})
    assert payload["errors"] == []
    assert payload["pendingEmail"] is None
    assert payload["reauthenticationRequired"] is True
    assert payload["user"]["email"] == NEW_EMAIL
    assert cookie_cleared(r)
    assert pending(db) == []
    assert [(to, kind) for to, kind, _ in notices(db)] == [(EMAIL, "email_change_revert")]
    token = await new_token(client, project, NEW_EMAIL)
    assert token is not None
    _, payload = await confirm(client, token, "123456")
    assert error_codes(payload) == [("INVALID_CODE", ["code"])]


async def test_audit_fields_never_hold_values(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_change(client, jane, {"email": NEW_EMAIL})
    code = code_sent_to(db, NEW_EMAIL)
    await confirm(client, jane.token, code)
    for (fields,) in db.sql("SELECT fields FROM audit_events"):
        text = str(json_column(fields))
        assert NEW_EMAIL not in text and code not in text


async def test_pending_email_changes_count_toward_the_per_user_credential_throttle(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    limit = 10  # AMEND_CREDENTIAL_CHANGES_PER_WINDOW's default
    for i in range(limit):
        _, payload = await request_change(
            client, jane, {"email": f"third.party{i}@example.org", "currentPassword": PASSWORD}
        )
        assert payload["errors"] == [] and payload["pendingEmail"], payload
    r = await client.post(
        "/graphql",
        json={
            "query": UPDATE_CREDENTIALS,
            "variables": {"input": {"email": "one.more@example.org", "currentPassword": PASSWORD}},
        },
        headers=jane.auth,
    )
    assert top_error(r.json())["code"] == "RATE_LIMITED"
    assert int(r.headers["Retry-After"]) > 0
    # No eleventh code mail went out to a third-party address.
    assert len([n for n in notices(db) if n[0].startswith("third.party")]) == limit
    assert not [n for n in notices(db) if n[0] == "one.more@example.org"]
