"""`updateMe`: the caller's own profile fields and custom data (SPEC §5, §6, §8).

Absent = unchanged, null = cleared, `data` merges (RFC 7396). Every refused update is followed
by a read-back through `me` proving that nothing changed.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import (
    UPDATE_ME,
    Account,
    error_codes,
    gql,
    read_me,
    sign_in,
    sign_up,
    sql,
    top_error,
)

FULL_PROFILE = {
    "firstName": "Jane",
    "lastName": "Smith",
    "username": "janes",
    "phoneNumber": "+14155552671",
    "imageUrl": "https://images.example.com/jane.png",
}
PROFILE_FIELDS = ("firstName", "lastName", "username", "phoneNumber", "imageUrl")


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(
        client, project.api_key, "jane", email="jane@example.com", data={"a": 1, "b": {"c": 2}}
    )


@pytest.fixture
async def bob(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "bob")


async def update_me(
    client: httpx.AsyncClient, account: Account, input: dict[str, Any]
) -> dict[str, Any]:
    body = await gql(client, UPDATE_ME, {"input": input}, headers=account.auth)
    assert "errors" not in body, body
    payload = body["data"]["updateMe"]
    assert isinstance(payload, dict)
    return payload


async def updated(client: httpx.AsyncClient, account: Account, input: dict[str, Any]) -> Any:
    payload = await update_me(client, account, input)
    assert payload["errors"] == [], payload
    # The payload's user is what is stored.
    assert payload["user"] == await read_me(client, account.token)
    return payload["user"]


async def assert_me_unchanged(
    client: httpx.AsyncClient, account: Account, before: dict[str, Any]
) -> None:
    assert await read_me(client, account.token) == before


# --------------------------------------------------------------------------------------------
# Setting, keeping and clearing fields
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        pytest.param("firstName", "Jane", "Jane", id="test_sets_first_name"),
        pytest.param("lastName", "Smith", "Smith", id="test_sets_last_name"),
        pytest.param("username", "janet", "janet", id="test_sets_username"),
        pytest.param("username", "  janet ", "janet", id="test_username_is_trimmed"),
        pytest.param("phoneNumber", "+14155552671", "+14155552671", id="test_sets_phone_number"),
        pytest.param(
            "imageUrl",
            "https://images.example.com/j.png",
            "https://images.example.com/j.png",
            id="test_sets_https_image_url",
        ),
        pytest.param(
            "imageUrl", "http://example.com/j.png", "http://example.com/j.png", id="test_http_url"
        ),
        pytest.param("data", {"z": True}, {"a": 1, "b": {"c": 2}, "z": True}, id="test_sets_data"),
    ],
)
async def test_each_field_is_set(
    client: httpx.AsyncClient, jane: Account, field: str, value: Any, expected: Any
) -> None:
    before = await read_me(client, jane.token)
    user = await updated(client, jane, {field: value})
    assert user[field] == expected
    assert user["version"] == 2
    # Every other field is unchanged.
    ignore = {field, "version", "updatedAt"}
    assert {k: v for k, v in user.items() if k not in ignore} == {
        k: v for k, v in before.items() if k not in ignore
    }


async def test_new_username_signs_in(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    await updated(client, jane, {"username": "Janet"})
    assert (await sign_in(client, project.api_key, "janet"))["data"]["signIn"]["errors"] == []
    old = await sign_in(client, project.api_key, "jane")
    assert [e["code"] for e in old["data"]["signIn"]["errors"]] == ["INVALID_CREDENTIALS"]


async def test_absent_fields_are_unchanged(client: httpx.AsyncClient, jane: Account) -> None:
    full = await updated(client, jane, FULL_PROFILE)
    assert {k: full[k] for k in PROFILE_FIELDS} == FULL_PROFILE
    user = await updated(client, jane, {"lastName": "Doe"})
    assert {k: user[k] for k in PROFILE_FIELDS} == {**FULL_PROFILE, "lastName": "Doe"}
    assert user["data"] == {"a": 1, "b": {"c": 2}}
    assert user["email"] == "jane@example.com"
    assert user["version"] == 3


@pytest.mark.parametrize(
    "field",
    [
        pytest.param("firstName", id="test_null_clears_first_name"),
        pytest.param("lastName", id="test_null_clears_last_name"),
        pytest.param("phoneNumber", id="test_null_clears_phone_number"),
        pytest.param("imageUrl", id="test_null_clears_image_url"),
    ],
)
async def test_null_clears_a_field(client: httpx.AsyncClient, jane: Account, field: str) -> None:
    await updated(client, jane, FULL_PROFILE)
    user = await updated(client, jane, {field: None})
    assert user[field] is None
    others = {k: user[k] for k in PROFILE_FIELDS if k != field}
    assert others == {k: v for k, v in FULL_PROFILE.items() if k != field}
    assert user["version"] == 3


async def test_same_values_change_nothing(client: httpx.AsyncClient, jane: Account) -> None:
    await updated(client, jane, FULL_PROFILE)
    before = await read_me(client, jane.token)
    user = await updated(client, jane, {**FULL_PROFILE, "data": {"a": 1}})
    assert user == before  # no version bump when nothing changed


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        pytest.param({"d": 4}, {"a": 1, "b": {"c": 2}, "d": 4}, id="test_data_merge_adds"),
        pytest.param({"a": None}, {"b": {"c": 2}}, id="test_data_merge_null_removes_member"),
        pytest.param(
            {"b": {"c": None, "e": [1, 2]}},
            {"a": 1, "b": {"e": [1, 2]}},
            id="test_data_merge_is_recursive",
        ),
        pytest.param({"b": "flat"}, {"a": 1, "b": "flat"}, id="test_data_merge_scalar_replaces"),
        pytest.param({}, {"a": 1, "b": {"c": 2}}, id="test_data_empty_patch_keeps_data"),
        pytest.param(
            {"email": "custom@example.com"},
            {"a": 1, "b": {"c": 2}, "email": "custom@example.com"},
            id="test_data_email_is_only_a_custom_field",
        ),
    ],
)
async def test_data_merges(
    client: httpx.AsyncClient, jane: Account, patch: dict[str, Any], expected: dict[str, Any]
) -> None:
    user = await updated(client, jane, {"data": patch})
    assert user["data"] == expected
    assert user["email"] == "jane@example.com"


# --------------------------------------------------------------------------------------------
# phoneVerified
# --------------------------------------------------------------------------------------------


def mark_phone_verified(db: TestDB, account: Account) -> None:
    sql(db, "UPDATE users SET phone_verified = ? WHERE unique_id = ?", (True, account.unique_id))


@pytest.mark.parametrize(
    ("new_phone", "verified_after"),
    [
        pytest.param("+447911123456", False, id="test_phone_change_resets_phone_verified"),
        pytest.param(None, False, id="test_phone_cleared_resets_phone_verified"),
        pytest.param("+14155552671", True, id="test_same_phone_keeps_phone_verified"),
    ],
)
async def test_phone_verified(
    client: httpx.AsyncClient,
    jane: Account,
    db: TestDB,
    new_phone: str | None,
    verified_after: bool,
) -> None:
    await updated(client, jane, {"phoneNumber": "+14155552671"})
    mark_phone_verified(db, jane)
    assert (await read_me(client, jane.token))["phoneVerified"] is True
    user = await updated(client, jane, {"phoneNumber": new_phone})
    assert user["phoneNumber"] == new_phone
    assert user["phoneVerified"] is verified_after


async def test_other_changes_keep_phone_verified(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    await updated(client, jane, {"phoneNumber": "+14155552671"})
    mark_phone_verified(db, jane)
    user = await updated(client, jane, {"firstName": "Jane", "data": {"x": 1}})
    assert user["phoneVerified"] is True


# --------------------------------------------------------------------------------------------
# Refused updates: payload errors, nothing written
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        pytest.param(
            {"phoneNumber": "12345"}, [("INVALID_FIELD", ["phoneNumber"])], id="test_bad_phone"
        ),
        pytest.param(
            {"phoneNumber": "+1 415 555 2671"},
            [("INVALID_FIELD", ["phoneNumber"])],
            id="test_phone_with_spaces_is_invalid",
        ),
        pytest.param(
            {"imageUrl": "javascript:alert(1)"},
            [("INVALID_FIELD", ["imageUrl"])],
            id="test_javascript_image_url_is_invalid",
        ),
        pytest.param(
            {"imageUrl": "data:image/png;base64,AAAA"},
            [("INVALID_FIELD", ["imageUrl"])],
            id="test_data_image_url_is_invalid",
        ),
        pytest.param(
            {"imageUrl": "/relative/j.png"},
            [("INVALID_FIELD", ["imageUrl"])],
            id="test_relative_image_url_is_invalid",
        ),
        pytest.param(
            {"username": None}, [("INVALID_FIELD", ["username"])], id="test_null_username"
        ),
        pytest.param(
            {"username": ""},
            [("REQUIRED_FIELD_MISSING", ["username"])],
            id="test_empty_username_is_required_field_missing",
        ),
        pytest.param(
            {"firstName": "x" * 101},
            [("INVALID_FIELD", ["firstName"])],
            id="test_too_long_first_name_is_invalid",
        ),
        pytest.param(
            {"lastName": "Smith\x00"},
            [("INVALID_FIELD", ["lastName"])],
            id="test_control_character_in_last_name_is_invalid",
        ),
        pytest.param(
            {"data": {"username": "root"}},
            [("FIELD_NOT_ALLOWED", ["data", "username"])],
            id="test_data_username_is_field_not_allowed",
        ),
        pytest.param(
            {"data": {"password": "Sneaky123x"}},
            [("FIELD_NOT_ALLOWED", ["data", "password"])],
            id="test_data_password_is_field_not_allowed",
        ),
        pytest.param(
            {"data": "not an object"},
            [("NOT_AN_OBJECT", ["data"])],
            id="test_data_string_is_not_an_object",
        ),
        pytest.param(
            {"data": [1, 2]}, [("NOT_AN_OBJECT", ["data"])], id="test_data_array_is_not_an_object"
        ),
        pytest.param({}, [("EMPTY_UPDATE", None)], id="test_empty_input_is_empty_update"),
        pytest.param(
            {"expectedVersion": 1},
            [("EMPTY_UPDATE", None)],
            id="test_only_expected_version_is_empty_update",
        ),
        pytest.param(
            {"firstName": "Janet", "expectedVersion": 7},
            [("VERSION_CONFLICT", ["expectedVersion"])],
            id="test_expected_version_mismatch_is_version_conflict",
        ),
        pytest.param(
            {"firstName": "Janet", "phoneNumber": "12345"},
            [("INVALID_FIELD", ["phoneNumber"])],
            id="test_one_bad_field_writes_no_field",
        ),
        pytest.param(
            {"phoneNumber": "12345", "imageUrl": "ftp://example.com/j.png"},
            [("INVALID_FIELD", ["phoneNumber"]), ("INVALID_FIELD", ["imageUrl"])],
            id="test_every_bad_field_is_reported",
        ),
    ],
)
async def test_refused_update_writes_nothing(
    client: httpx.AsyncClient,
    jane: Account,
    input: dict[str, Any],
    expected: list[tuple[str, list[str] | None]],
) -> None:
    before = await read_me(client, jane.token)
    payload = await update_me(client, jane, input)
    assert payload["user"] is None
    assert payload["session"] is None
    got = error_codes(payload)
    assert sorted(got, key=str) == sorted(expected, key=str)
    assert all(e["message"] for e in payload["errors"])
    await assert_me_unchanged(client, jane, before)


@pytest.mark.parametrize("taken", ["bob", "BOB", " Bob "])
async def test_taken_username_is_username_taken(
    client: httpx.AsyncClient, jane: Account, bob: Account, taken: str
) -> None:
    before = await read_me(client, jane.token)
    payload = await update_me(client, jane, {"username": taken, "firstName": "Jane"})
    assert error_codes(payload) == [("USERNAME_TAKEN", ["username"])]
    await assert_me_unchanged(client, jane, before)
    assert (await read_me(client, bob.token))["username"] == "bob"


async def test_own_username_in_another_case_is_allowed(
    client: httpx.AsyncClient, jane: Account
) -> None:
    user = await updated(client, jane, {"username": "JANE"})
    assert user["username"] == "JANE"


async def test_expected_version_match_writes(client: httpx.AsyncClient, jane: Account) -> None:
    user = await updated(client, jane, {"firstName": "A", "expectedVersion": 1})
    assert user["version"] == 2
    before = await read_me(client, jane.token)
    stale = await update_me(client, jane, {"firstName": "B", "expectedVersion": 1})
    assert error_codes(stale) == [("VERSION_CONFLICT", ["expectedVersion"])]
    await assert_me_unchanged(client, jane, before)


# --------------------------------------------------------------------------------------------
# The payload's session
# --------------------------------------------------------------------------------------------


async def test_payload_session_lists_signins_and_the_active_one(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    second = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]
    payload = await update_me(client, jane, {"firstName": "Jane"})
    assert payload["errors"] == []
    session = payload["session"]
    assert session["activeSignin"] == {"id": jane.session_id}
    signins = {s["id"]: s for s in session["signins"]}
    assert set(signins) == {jane.session_id, second["session"]["id"]}
    assert signins[jane.session_id]["current"] is True
    assert signins[second["session"]["id"]]["current"] is False
    assert all(s["userId"] == f"user_{jane.unique_id}" for s in session["signins"])
    assert all(a["succeeded"] for a in session["signinAttempts"])
    assert len(session["signupAttempts"]) == 1


# --------------------------------------------------------------------------------------------
# The schema and authentication
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("email", "new@example.com", id="test_no_email_input"),
        pytest.param("emailVerified", True, id="test_no_email_verified_input"),
        pytest.param("phoneVerified", True, id="test_no_phone_verified_input"),
        pytest.param("twoFactorEnabled", True, id="test_no_two_factor_enabled_input"),
        pytest.param("password", "N3wSecret42x", id="test_no_password_input"),
        pytest.param("id", "user_0", id="test_no_id_input"),
        pytest.param("version", 9, id="test_no_version_input"),
        pytest.param("createdAt", "2020-01-01T00:00:00Z", id="test_no_created_at_input"),
    ],
)
async def test_protected_field_is_a_validation_error(
    client: httpx.AsyncClient, jane: Account, field: str, value: Any
) -> None:
    before = await read_me(client, jane.token)
    response = await client.post(
        "/graphql",
        json={"query": UPDATE_ME, "variables": {"input": {"firstName": "X", field: value}}},
        headers=jane.auth,
    )
    body = response.json()
    assert body.get("data") is None
    assert body["errors"]
    assert field in body["errors"][0]["message"]
    await assert_me_unchanged(client, jane, before)
    # The same through an inline literal (document validation rather than variable coercion).
    literal = (
        f"mutation {{ updateMe(input: {{ {field}: {_literal(value)} }}) {{ errors {{ code }} }} }}"
    )
    response = await client.post("/graphql", json={"query": literal}, headers=jane.auth)
    body = response.json()
    assert body.get("data") is None
    assert body["errors"]
    await assert_me_unchanged(client, jane, before)


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


async def test_without_token_is_unauthenticated(client: httpx.AsyncClient, jane: Account) -> None:
    client.cookies.clear()
    body = await gql(client, UPDATE_ME, {"input": {"firstName": "Mallory"}})
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}
    assert (await read_me(client, jane.token))["firstName"] is None


async def test_revoked_session_is_unauthenticated(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    before = await read_me(client, jane.token)
    sql(db, "UPDATE sessions SET revoked_at = created_at")
    body = await gql(client, UPDATE_ME, {"input": {"firstName": "Mallory"}}, headers=jane.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    rows = sql(db, "SELECT first_name, version FROM users WHERE unique_id = ?", (jane.unique_id,))
    assert rows == [(None, before["version"])]


async def test_update_me_is_audited(client: httpx.AsyncClient, jane: Account, db: TestDB) -> None:
    await updated(client, jane, {"firstName": "Jane", "phoneNumber": "+14155552671"})
    rows = sql(db, "SELECT action, actor, fields FROM audit_events ORDER BY id")
    action, actor, fields = rows[-1]
    assert (action, actor) == ("update_me", "user")
    assert sorted(json_column(fields)) == ["first_name", "phone_number"]
