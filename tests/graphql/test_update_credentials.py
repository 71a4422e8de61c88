"""`updateCredentials`: email and password changes (SPEC §4, §5, §6, §8).

Proof of presence (a recent sign-in or `currentPassword`), the password policy, revocation of
every session, throttling, and the plan gate. Every refused change is followed by a read-back
proving that nothing changed (same version, same email, the old password still signs in).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.core.models import Plan
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import (
    ME,
    UPDATE_CREDENTIALS,
    Account,
    age_sessions,
    cookie_cleared,
    error_codes,
    gql,
    read_me,
    sign_in,
    sign_up,
    sql,
    top_error,
)

EMAIL = "jane@example.com"
NEW_PASSWORD = "N3wSecret42x"
NEW_EMAIL = "jane.new@example.com"


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL)


async def update_credentials(
    client: httpx.AsyncClient, account: Account, input: dict[str, Any]
) -> dict[str, Any]:
    return await gql(client, UPDATE_CREDENTIALS, {"input": input}, headers=account.auth)


def payload_of(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    payload = body["data"]["updateCredentials"]
    assert isinstance(payload, dict)
    return payload


async def signs_in(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str, password: str
) -> bool:
    body = await sign_in(client, project.api_key, identifier, password)
    assert "errors" not in body, body
    errors = body["data"]["signIn"]["errors"]
    assert [e["code"] for e in errors] in ([], ["INVALID_CREDENTIALS"]), body
    return not errors


async def assert_unchanged(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    account: Account,
    before: dict[str, Any],
    *,
    check_sign_in: bool = True,
) -> None:
    """Nothing was written: `me` is identical (version, email, flags) and the session is alive;
    the old password still signs in."""
    assert await read_me(client, account.token) == before
    if check_sign_in:
        assert await signs_in(client, project, account.username, account.password)


# --------------------------------------------------------------------------------------------
# Refused changes
# --------------------------------------------------------------------------------------------


async def test_free_plan_is_plan_required(client: httpx.AsyncClient, make_project_fn: Any) -> None:
    free = await make_project_fn("freeproj", plan=Plan.FREE)
    account = await sign_up(client, free.api_key, "jane", email=EMAIL)
    before = await read_me(client, account.token)
    body = await update_credentials(client, account, {"password": NEW_PASSWORD})
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "PLAN_REQUIRED"}
    assert body["data"] is None
    await assert_unchanged(client, free, account, before)


@pytest.mark.parametrize("plan", [Plan.PERSONAL, Plan.BUSINESS])
async def test_personal_plan_and_above_may_change_credentials(
    client: httpx.AsyncClient, make_project_fn: Any, plan: Plan
) -> None:
    keys = await make_project_fn(f"proj-{plan.value}", plan=plan)
    account = await sign_up(client, keys.api_key, "jane")
    payload = payload_of(await update_credentials(client, account, {"password": NEW_PASSWORD}))
    assert payload["errors"] == []


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        pytest.param({}, [("EMPTY_UPDATE", None)], id="test_empty_input_is_empty_update"),
        pytest.param(
            {"currentPassword": PASSWORD},
            [("EMPTY_UPDATE", None)],
            id="test_only_current_password_is_empty_update",
        ),
        pytest.param(
            {"email": "JANE@Example.com"},
            [("EMPTY_UPDATE", None)],
            id="test_same_email_in_another_case_is_empty_update",
        ),
        pytest.param(
            {"email": "not-an-email"},
            [("INVALID_EMAIL", ["email"])],
            id="test_malformed_email_is_invalid_email",
        ),
        pytest.param(
            {"email": ""}, [("INVALID_EMAIL", ["email"])], id="test_empty_email_is_invalid_email"
        ),
        pytest.param(
            {"email": "jane@@example.com", "password": NEW_PASSWORD},
            [("INVALID_EMAIL", ["email"])],
            id="test_invalid_email_blocks_the_password_too",
        ),
        pytest.param(
            {"password": "abc1"},
            [("PASSWORD_POLICY", ["password"])],
            id="test_short_password_is_password_policy",
        ),
        pytest.param(
            {"password": "abcdefghij"},
            [("PASSWORD_POLICY", ["password"])],
            id="test_password_without_digit_is_password_policy",
        ),
        pytest.param(
            {"password": "1234567890"},
            [("PASSWORD_POLICY", ["password"])],
            id="test_password_without_letter_is_password_policy",
        ),
        pytest.param(
            {"password": "a1" * 16},
            [("PASSWORD_POLICY", ["password"])],
            id="test_too_long_password_is_password_policy",
        ),
        pytest.param(
            {"password": "password1"},
            [("PASSWORD_POLICY", ["password"])],
            id="test_common_password_is_password_policy",
        ),
        pytest.param(
            {"email": "kate99x@example.com", "password": "kate99x"},
            [("PASSWORD_POLICY", ["password"])],
            id="test_password_equal_to_email_name_is_password_policy",
        ),
        pytest.param(
            {"password": PASSWORD},
            [("PASSWORD_POLICY", ["password"])],
            id="test_current_password_as_new_password_is_password_policy",
        ),
        pytest.param(
            {"password": PASSWORD, "currentPassword": PASSWORD},
            [("PASSWORD_POLICY", ["password"])],
            id="test_current_password_as_new_password_with_proof_is_password_policy",
        ),
    ],
)
async def test_refused_change_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    input: dict[str, Any],
    expected: list[tuple[str, list[str] | None]],
) -> None:
    before = await read_me(client, jane.token)
    response = await client.post(
        "/graphql",
        json={"query": UPDATE_CREDENTIALS, "variables": {"input": input}},
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert error_codes(payload) == expected
    assert payload["user"] is None
    assert payload["reauthenticationRequired"] is False
    assert all(e["message"] for e in payload["errors"])
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, before)


@pytest.mark.parametrize("taken", ["bob@example.com", "BOB@Example.COM", " bob@example.com "])
async def test_email_of_another_user_is_email_taken(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, taken: str
) -> None:
    await sign_up(client, project.api_key, "bob", email="bob@example.com")
    before = await read_me(client, jane.token)
    payload = payload_of(await update_credentials(client, jane, {"email": taken}))
    assert error_codes(payload) == [("EMAIL_TAKEN", ["email"])]
    await assert_unchanged(client, project, jane, before)


async def test_no_token_is_unauthenticated(client: httpx.AsyncClient, jane: Account) -> None:
    client.cookies.clear()
    body = await gql(client, UPDATE_CREDENTIALS, {"input": {"password": NEW_PASSWORD}})
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}
    await read_me(client, jane.token)


# --------------------------------------------------------------------------------------------
# Proof of presence
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "input",
    [
        pytest.param({"password": NEW_PASSWORD}, id="test_aged_session_password_change"),
        pytest.param({"email": NEW_EMAIL}, id="test_aged_session_email_change"),
    ],
)
async def test_aged_session_without_current_password_requires_reauthentication(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    input: dict[str, Any],
) -> None:
    age_sessions(db)
    before = await read_me(client, jane.token)
    payload = payload_of(await update_credentials(client, jane, input))
    assert error_codes(payload) == [("REAUTHENTICATION_REQUIRED", ["currentPassword"])]
    assert payload["reauthenticationRequired"] is False
    await assert_unchanged(client, project, jane, before)


@pytest.mark.parametrize("settings_env", [{"AMEND_REAUTH_WINDOW_SECONDS": "0"}])
async def test_zero_reauth_window_requires_current_password(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    import asyncio

    await asyncio.sleep(0.01)
    before = await read_me(client, jane.token)
    payload = payload_of(await update_credentials(client, jane, {"password": NEW_PASSWORD}))
    assert error_codes(payload) == [("REAUTHENTICATION_REQUIRED", ["currentPassword"])]
    await assert_unchanged(client, project, jane, before)
    # The same change with the current password goes through.
    payload = payload_of(
        await update_credentials(
            client, jane, {"password": NEW_PASSWORD, "currentPassword": PASSWORD}
        )
    )
    assert payload["errors"] == []


async def test_aged_session_with_current_password_succeeds(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    age_sessions(db)
    payload = payload_of(
        await update_credentials(
            client, jane, {"password": NEW_PASSWORD, "currentPassword": PASSWORD}
        )
    )
    assert payload["errors"] == []
    assert payload["reauthenticationRequired"] is True
    assert await signs_in(client, project, "jane", NEW_PASSWORD)


@pytest.mark.parametrize("aged", [False, True], ids=["fresh_session", "aged_session"])
async def test_wrong_current_password_requires_reauthentication(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB, aged: bool
) -> None:
    # A wrong currentPassword is refused even from a fresh session: the proof given is checked.
    if aged:
        age_sessions(db)
    before = await read_me(client, jane.token)
    payload = payload_of(
        await update_credentials(
            client, jane, {"password": NEW_PASSWORD, "currentPassword": "Wr0ngGuess"}
        )
    )
    assert error_codes(payload) == [("REAUTHENTICATION_REQUIRED", ["currentPassword"])]
    await assert_unchanged(client, project, jane, before)
    rows = sql(db, "SELECT kind, succeeded FROM signin_attempts ORDER BY id")
    assert ("reauth", False) in [(kind, bool(succeeded)) for kind, succeeded in rows]


@pytest.mark.parametrize("settings_env", [{"AMEND_SIGNIN_MAX_FAILURES": "3"}])
async def test_wrong_current_passwords_count_as_failed_sign_ins(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    before = await read_me(client, jane.token)
    for _ in range(3):
        payload = payload_of(
            await update_credentials(
                client, jane, {"password": NEW_PASSWORD, "currentPassword": "Wr0ngGuess"}
            )
        )
        assert error_codes(payload) == [("REAUTHENTICATION_REQUIRED", ["currentPassword"])]
    await assert_unchanged(client, project, jane, before, check_sign_in=False)
    # The account's sign-in is now throttled, even with the right password ...
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($i: SignInInput!) { signIn(input: $i) { token errors { code } } }",
            "variables": {"i": {"identifier": "jane", "password": PASSWORD}},
        },
        headers={"X-API-Key": project.api_key},
    )
    body = response.json()
    assert top_error(body) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    assert int(response.headers["Retry-After"]) > 0
    # ... by email too, and so is a further currentPassword check (even the right one).
    by_email = await sign_in(client, project.api_key, EMAIL, PASSWORD)
    assert top_error(by_email) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    body = await update_credentials(
        client, jane, {"password": NEW_PASSWORD, "currentPassword": PASSWORD}
    )
    assert top_error(body) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    assert await read_me(client, jane.token) == before


# --------------------------------------------------------------------------------------------
# Successful changes
# --------------------------------------------------------------------------------------------


async def test_success_revokes_every_session_and_clears_the_cookie(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    first = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"]
    second = (await sign_in(client, project.api_key, EMAIL))["data"]["signIn"]["token"]
    response = await client.post(
        "/graphql",
        json={"query": UPDATE_CREDENTIALS, "variables": {"input": {"password": NEW_PASSWORD}}},
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["reauthenticationRequired"] is True
    assert payload["pendingEmail"] is None
    assert payload["user"]["version"] == 2
    assert payload["user"]["email"] == EMAIL
    assert cookie_cleared(response)
    for token in (jane.token, first, second):
        body = await gql(client, ME, headers={"Authorization": f"Bearer {token}"})
        assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    revoked = sql(db, "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL")
    assert revoked == [(0,)]
    assert await signs_in(client, project, "jane", NEW_PASSWORD)
    assert not await signs_in(client, project, "jane", PASSWORD)
    rows = sql(db, "SELECT action, actor, fields FROM audit_events ORDER BY id")
    action, actor, fields = rows[-1]
    assert (action, actor, json_column(fields)) == ("update_credentials", "user", ["password"])


async def test_email_change_resets_email_verified_and_signs_in(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    sql(db, "UPDATE users SET email_verified = ? WHERE unique_id = ?", (True, jane.unique_id))
    assert (await read_me(client, jane.token))["emailVerified"] is True
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_CREDENTIALS,
            "variables": {"input": {"email": " Jane.New@EXAMPLE.com "}},
        },
        headers=jane.auth,
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert payload["reauthenticationRequired"] is True
    user = payload["user"]
    assert user["email"] == "Jane.New@example.com"  # normalized: domain lowercased, trimmed
    assert user["emailVerified"] is False
    assert cookie_cleared(response)
    body = await gql(client, ME, headers=jane.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    assert await signs_in(client, project, NEW_EMAIL, PASSWORD)
    assert not await signs_in(client, project, EMAIL, PASSWORD)
    signed_in = await sign_in(client, project.api_key, "jane", PASSWORD)
    me = await read_me(client, signed_in["data"]["signIn"]["token"])
    assert me["email"] == "Jane.New@example.com"
    assert me["emailVerified"] is False
    rows = sql(db, "SELECT fields FROM audit_events WHERE action = 'update_credentials'")
    assert [json_column(r[0]) for r in rows] == [["email"]]


async def test_email_and_password_change_together(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    payload = payload_of(
        await update_credentials(client, jane, {"email": NEW_EMAIL, "password": NEW_PASSWORD})
    )
    assert payload["errors"] == []
    assert payload["user"]["email"] == NEW_EMAIL
    assert await signs_in(client, project, NEW_EMAIL, NEW_PASSWORD)
    assert not await signs_in(client, project, NEW_EMAIL, PASSWORD)
    assert not await signs_in(client, project, EMAIL, NEW_PASSWORD)


async def test_user_without_email_may_add_one(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key, "noemail")
    payload = payload_of(await update_credentials(client, account, {"email": "added@example.com"}))
    assert payload["errors"] == []
    assert payload["user"]["email"] == "added@example.com"
    assert await signs_in(client, project, "added@example.com", PASSWORD)


async def test_success_via_cookie_clears_it(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": UPDATE_CREDENTIALS, "variables": {"input": {"password": NEW_PASSWORD}}},
        headers={"Cookie": f"access_token={jane.token}"},
    )
    payload = payload_of(response.json())
    assert payload["errors"] == []
    assert cookie_cleared(response)


@pytest.mark.parametrize("settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "2"}])
async def test_credential_changes_are_throttled_per_user(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    account = jane
    changes = [{"password": NEW_PASSWORD}, {"email": NEW_EMAIL}]
    for input in changes:
        payload = payload_of(await update_credentials(client, account, input))
        assert payload["errors"] == [], payload
        password = NEW_PASSWORD
        signed_in = await sign_in(client, project.api_key, "jane", password)
        token = signed_in["data"]["signIn"]["token"]
        account = Account("jane", password, token, jane.unique_id, "")
    before = await read_me(client, account.token)
    response = await client.post(
        "/graphql",
        json={"query": UPDATE_CREDENTIALS, "variables": {"input": {"password": "Th1rdSecret"}}},
        headers=account.auth,
    )
    body = response.json()
    assert top_error(body) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    assert int(response.headers["Retry-After"]) > 0
    await assert_unchanged(client, project, account, before)
    assert not await signs_in(client, project, "jane", "Th1rdSecret")


@pytest.mark.parametrize("settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1"}])
async def test_sign_up_is_not_a_credential_change(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # Regression: the sign-up audit event names `password`; it must not use up the allowance.
    payload = payload_of(await update_credentials(client, jane, {"password": NEW_PASSWORD}))
    assert payload["errors"] == []


async def test_secrets_are_not_in_the_payload(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_CREDENTIALS,
            "variables": {"input": {"password": NEW_PASSWORD, "currentPassword": PASSWORD}},
        },
        headers=jane.auth,
    )
    assert response.json()["data"]["updateCredentials"]["errors"] == []
    assert NEW_PASSWORD not in response.text
    assert PASSWORD not in response.text
