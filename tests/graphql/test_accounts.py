"""signUp, signIn, signOut, revokeSession, `me` and `session`, through real HTTP (SPEC §3, §4,
§6, §8). Every failure is followed by a read-back showing that nothing was written."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.services.container import Services
from api.store import projects as project_store
from tests.conftest import PASSWORD, ProjectKeys, make_settings
from tests.db import TestDB
from tests.gql import (
    ME,
    REVOKE,
    SESSION,
    SIGN_IN,
    SIGN_OUT,
    SIGN_UP,
    gql,
    sign_up,
    top_error,
)

ISO_MS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
USER_ID = re.compile(r"user_[0-9a-f]{32}")
SESSION_ID = re.compile(r"signin_[0-9a-f]{32}")
HEX32 = re.compile(r"[0-9a-f]{32}")


# --------------------------------------------------------------------------- helpers


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST /graphql without asserting the status (gql() asserts 200)."""
    return await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers or {}
    )


def db_rows(db: TestDB, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Read the test's database directly: what was really written."""
    return db.sql(sql, args)


def user_count(db: TestDB) -> int:
    return int(db_rows(db, "SELECT count(*) FROM users")[0][0])


def stored_hash(db: TestDB, username: str) -> str:
    rows = db_rows(db, "SELECT password_hash FROM users WHERE username = ?", username)
    assert len(rows) == 1
    return str(rows[0][0])


def cookie_attributes(set_cookie: str) -> tuple[str, str, set[str]]:
    """(name, value, lowercase attributes) of one Set-Cookie header; Max-Age/Expires dropped."""
    first, *attrs = [part.strip() for part in set_cookie.split(";")]
    name, _, value = first.partition("=")
    flags = {a.lower() for a in attrs if a and not a.lower().startswith(("max-age=", "expires="))}
    return name, value, flags


def session_cookies(response: httpx.Response, name: str = "access_token") -> list[str]:
    return [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]


def signup_vars(username: str = "jane", password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return {"input": {"username": username, "password": password, **extra}}


async def signup_errors(
    client: httpx.AsyncClient, api_key: str, variables: dict[str, Any]
) -> list[dict[str, Any]]:
    response = await post(client, SIGN_UP, variables, headers={"X-API-Key": api_key})
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["signUp"]
    assert payload["token"] is None
    assert payload["user"] is None
    assert payload["session"] is None
    assert session_cookies(response) == []
    errors: list[dict[str, Any]] = payload["errors"]
    return errors


async def signin_payload(
    client: httpx.AsyncClient,
    api_key: str,
    identifier: str,
    password: str = PASSWORD,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = await gql(
        client,
        SIGN_IN,
        {"input": {"identifier": identifier, "password": password}},
        headers={"X-API-Key": api_key, **(headers or {})},
    )
    payload: dict[str, Any] = body["data"]["signIn"]
    return payload


async def assert_signs_in(client: httpx.AsyncClient, api_key: str, identifier: str) -> None:
    payload = await signin_payload(client, api_key, identifier)
    assert payload["errors"] == [], payload
    assert payload["token"]


async def assert_cannot_sign_in(client: httpx.AsyncClient, api_key: str, identifier: str) -> None:
    payload = await signin_payload(client, api_key, identifier)
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --------------------------------------------------------------------------- signUp


async def test_sign_up_returns_token_user_session_and_sets_the_cookie(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    variables = signup_vars(
        email="Jane@Example.COM", firstName="Jane", lastName="Smith", data={"plan": "gold"}
    )
    response = await post(client, SIGN_UP, variables, headers={"X-API-Key": project.api_key})
    assert response.status_code == 200
    payload = response.json()["data"]["signUp"]
    assert payload["errors"] == []

    user = payload["user"]
    assert HEX32.fullmatch(user["uniqueId"])
    assert USER_ID.fullmatch(user["id"])
    assert user["id"] == f"user_{user['uniqueId']}"
    assert user["endpoint"] == "users"
    assert user["username"] == "jane"
    assert user["email"] == "Jane@example.com"  # domain normalized, local part kept
    assert (user["firstName"], user["lastName"]) == ("Jane", "Smith")
    assert (user["phoneNumber"], user["imageUrl"]) == (None, None)
    assert user["twoFactorEnabled"] is False
    assert user["emailVerified"] is False
    assert user["phoneVerified"] is False
    assert user["data"] == {"plan": "gold"}
    assert user["version"] == 1
    assert ISO_MS.fullmatch(user["createdAt"])
    assert ISO_MS.fullmatch(user["updatedAt"])

    session = payload["session"]
    assert SESSION_ID.fullmatch(session["id"])
    assert session["userId"] == user["id"]
    assert session["current"] is True
    assert ISO_MS.fullmatch(session["createdAt"])
    assert ISO_MS.fullmatch(session["expiresAt"])
    assert session["expiresAt"] > session["createdAt"]

    token = payload["token"]
    assert token.count(".") == 2
    (cookie,) = session_cookies(response)
    name, value, _flags = cookie_attributes(cookie)
    assert (name, value) == ("access_token", token)

    # The token works, and the password is stored hashed, never in clear.
    me = await gql(client, ME, headers=bearer(token))
    assert me["data"]["me"]["id"] == user["id"]
    assert stored_hash(db, "jane").startswith("$argon2id$")
    assert PASSWORD not in stored_hash(db, "jane")


async def test_sign_up_without_optional_fields_gives_empty_data_and_null_email(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key, "bob")
    assert account.user["email"] is None
    assert account.user["data"] == {}
    assert account.user["firstName"] is None


@pytest.mark.parametrize(
    ("first", "second"),
    [("Jane", "jane"), ("jane", "JANE"), ("jane", "  jane ")],
    ids=["capitalized-first", "upper-second", "surrounding-whitespace"],
)
async def test_sign_up_with_a_taken_username_fails_case_insensitively(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, first: str, second: str
) -> None:
    await sign_up(client, project.api_key, first)
    errors = await signup_errors(client, project.api_key, signup_vars(second))
    assert [(e["code"], e["field"]) for e in errors] == [("USERNAME_TAKEN", ["username"])]
    assert user_count(db) == 1


async def test_sign_up_with_a_taken_email_fails_case_insensitively(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key, "jane", email="Jane@Example.com")
    errors = await signup_errors(
        client, project.api_key, signup_vars("bob", email="JANE@example.COM")
    )
    assert [(e["code"], e["field"]) for e in errors] == [("EMAIL_TAKEN", ["email"])]
    assert user_count(db) == 1
    await assert_cannot_sign_in(client, project.api_key, "bob")


async def test_the_same_username_may_exist_in_two_projects(
    client: httpx.AsyncClient, project: ProjectKeys, make_project_fn: Any, db: TestDB
) -> None:
    other = await make_project_fn("other")
    await sign_up(client, project.api_key, "jane")
    await sign_up(client, other.api_key, "jane")
    assert user_count(db) == 2


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("jane", "Ab1"),  # shorter than 6
        ("jane", "a1" * 16),  # longer than 30
        ("jane", "abcdefgh"),  # no digit
        ("jane", "12345678"),  # no letter
        ("jane", "password1"),  # on the shipped deny-list
        ("jane", "PASSWORD1"),  # deny-list ignores case
        ("jane2024x", "jane2024x"),  # equal to the username
        ("Jane2024x", "jane2024X"),  # equal to the username, ignoring case
    ],
    ids=[
        "too-short",
        "too-long",
        "no-digit",
        "no-letter",
        "deny-listed",
        "deny-listed-upper",
        "equals-username",
        "equals-username-ignoring-case",
    ],
)
async def test_sign_up_with_a_weak_password_fails_with_password_policy(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, username: str, password: str
) -> None:
    errors = await signup_errors(client, project.api_key, signup_vars(username, password))
    assert [(e["code"], e["field"]) for e in errors] == [("PASSWORD_POLICY", ["password"])]
    assert errors[0]["message"]
    assert user_count(db) == 0
    await assert_cannot_sign_in(client, project.api_key, username)


async def test_sign_up_with_a_password_equal_to_the_email_fails_with_password_policy(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    variables = signup_vars("jane", "jane77@example.com", email="jane77@example.com")
    errors = await signup_errors(client, project.api_key, variables)
    assert [e["code"] for e in errors] == ["PASSWORD_POLICY"]
    assert user_count(db) == 0


@pytest.mark.parametrize("email", ["not-an-email", "jane@", "@example.com", "jane@@example.com"])
async def test_sign_up_with_an_invalid_email_fails_with_invalid_email(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, email: str
) -> None:
    errors = await signup_errors(client, project.api_key, signup_vars(email=email))
    assert [(e["code"], e["field"]) for e in errors] == [("INVALID_EMAIL", ["email"])]
    assert user_count(db) == 0


@pytest.mark.parametrize("key", ["username", "password"])
async def test_sign_up_with_a_reserved_key_in_custom_data_fails_with_field_not_allowed(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, key: str
) -> None:
    errors = await signup_errors(
        client, project.api_key, signup_vars(data={key: "mallory", "ok": 1})
    )
    assert [(e["code"], e["field"]) for e in errors] == [("FIELD_NOT_ALLOWED", ["data", key])]
    assert user_count(db) == 0
    await assert_cannot_sign_in(client, project.api_key, "jane")


async def test_sign_up_with_custom_data_that_is_not_an_object_fails(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    errors = await signup_errors(client, project.api_key, signup_vars(data=[1, 2]))
    assert [(e["code"], e["field"]) for e in errors] == [("NOT_AN_OBJECT", ["data"])]
    assert user_count(db) == 0


async def test_sign_up_with_an_empty_username_fails_and_reports_every_problem(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    errors = await signup_errors(client, project.api_key, signup_vars("  ", email="nope"))
    assert {(e["code"], tuple(e["field"])) for e in errors} == {
        ("REQUIRED_FIELD_MISSING", ("username",)),
        ("INVALID_EMAIL", ("email",)),
    }
    assert user_count(db) == 0


@pytest.mark.parametrize(
    ("headers", "code", "reason"),
    [
        ({}, "FORBIDDEN", "MISSING_API_KEY"),
        ({"X-API-Key": "ak_not-a-real-key"}, "FORBIDDEN", "INVALID_API_KEY"),
    ],
    ids=["missing-api-key", "invalid-api-key"],
)
async def test_sign_up_without_a_valid_api_key_is_a_top_level_forbidden_error(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    db: TestDB,
    headers: dict[str, str],
    code: str,
    reason: str,
) -> None:
    response = await post(client, SIGN_UP, signup_vars(), headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert top_error(body) == {"code": code, "reason": reason}
    assert body["errors"][0]["path"] == ["signUp"]
    assert session_cookies(response) == []
    assert user_count(db) == 0


async def test_sign_up_with_the_api_key_in_the_query_string_works(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    body = await gql(client, SIGN_UP, signup_vars(), params={"key": project.api_key})
    assert body["data"]["signUp"]["errors"] == []
    assert user_count(db) == 1


@pytest.mark.parametrize("endpoint", ["nope", "Not A Name!", ""])
async def test_sign_up_into_an_unknown_endpoint_is_a_top_level_bad_request(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, endpoint: str
) -> None:
    response = await post(
        client, SIGN_UP, signup_vars(endpoint=endpoint), headers={"X-API-Key": project.api_key}
    )
    body = response.json()
    assert body["data"] is None
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "INVALID_ENDPOINT"}
    assert user_count(db) == 0


async def test_sign_up_into_another_projects_endpoint_is_refused(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    make_project_fn: Any,
    db: TestDB,
    services: Services,
) -> None:
    other = await make_project_fn("other")
    await add_endpoint(services, other)  # "staff" exists only in the other project
    response = await post(
        client, SIGN_UP, signup_vars(endpoint="staff"), headers={"X-API-Key": project.api_key}
    )
    assert top_error(response.json()) == {"code": "BAD_REQUEST", "reason": "INVALID_ENDPOINT"}
    assert user_count(db) == 0


async def add_endpoint(services: Services, keys: ProjectKeys, name: str = "staff") -> None:
    async with services.db.write() as tx:
        await project_store.create_endpoint(tx, keys.id, name)


async def test_sign_up_into_a_second_endpoint_of_the_project_works(
    client: httpx.AsyncClient, project: ProjectKeys, services: Services
) -> None:
    await add_endpoint(services, project)
    await sign_up(client, project.api_key, "jane")
    body = await gql(
        client,
        SIGN_UP,
        signup_vars("jane", endpoint="staff"),
        headers={"X-API-Key": project.api_key},
    )
    payload = body["data"]["signUp"]
    assert payload["errors"] == []
    assert payload["user"]["endpoint"] == "staff"


# --------------------------------------------------------------------------- signIn


@pytest.mark.parametrize(
    "identifier",
    ["Jane", "jane", "JANE", "Jane@Example.com", "jane@example.com", "JANE@EXAMPLE.COM"],
)
async def test_sign_in_by_username_or_email_is_case_insensitive(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str
) -> None:
    account = await sign_up(client, project.api_key, "Jane", email="Jane@Example.com")
    payload = await signin_payload(client, project.api_key, identifier)
    assert payload["errors"] == []
    assert payload["user"]["id"] == f"user_{account.unique_id}"
    assert payload["user"]["username"] == "Jane"
    assert SESSION_ID.fullmatch(payload["session"]["id"])
    assert payload["session"]["id"] != account.session_id
    assert payload["session"]["current"] is True
    me = await gql(client, ME, headers=bearer(payload["token"]))
    assert me["data"]["me"]["uniqueId"] == account.unique_id


async def test_sign_in_sets_an_httponly_lax_secure_cookie_for_the_whole_site(
    client: httpx.AsyncClient, project: ProjectKeys, settings: Any
) -> None:
    await sign_up(client, project.api_key)
    response = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "jane", "password": PASSWORD}},
        headers={"X-API-Key": project.api_key},
    )
    payload = response.json()["data"]["signIn"]
    (cookie,) = session_cookies(response)
    name, value, flags = cookie_attributes(cookie)
    assert (name, value) == ("access_token", payload["token"])
    assert flags == {"httponly", "samesite=lax", "path=/", "secure"}
    assert f"max-age={settings.token_ttl_seconds}" in cookie.lower()


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_SECURE": "false"}], indirect=True)
async def test_sign_in_cookie_has_no_secure_flag_when_cookie_secure_is_off(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)
    client.cookies.clear()
    response = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "jane", "password": PASSWORD}},
        headers={"X-API-Key": project.api_key},
    )
    (cookie,) = session_cookies(response)
    _name, _value, flags = cookie_attributes(cookie)
    assert flags == {"httponly", "samesite=lax", "path=/"}


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_NAME": "amend_sid"}], indirect=True)
async def test_sign_in_uses_the_configured_cookie_name(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)
    response = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "jane", "password": PASSWORD}},
        headers={"X-API-Key": project.api_key},
    )
    assert session_cookies(response) == []
    assert len(session_cookies(response, "amend_sid")) == 1
    token = response.json()["data"]["signIn"]["token"]
    me = await gql(client, ME, headers={"Cookie": f"amend_sid={token}"})
    assert me["data"]["me"]["username"] == "jane"


async def test_sign_in_with_wrong_password_is_refused_like_unknown_user(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane", email="jane@example.com")
    wrong_password = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "jane", "password": "Wrong123x"}},
        headers={"X-API-Key": project.api_key},
    )
    unknown_user = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "nobody", "password": "Wrong123x"}},
        headers={"X-API-Key": project.api_key},
    )
    unknown_email = await post(
        client,
        SIGN_IN,
        {"input": {"identifier": "nobody@example.com", "password": PASSWORD}},
        headers={"X-API-Key": project.api_key},
    )
    payloads = [r.json()["data"]["signIn"] for r in (wrong_password, unknown_user, unknown_email)]
    for response, payload in zip(
        (wrong_password, unknown_user, unknown_email), payloads, strict=True
    ):
        assert response.status_code == 200
        assert "errors" not in response.json()
        assert payload["token"] is None
        assert payload["user"] is None
        assert payload["session"] is None
        assert session_cookies(response) == []
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [
            ("INVALID_CREDENTIALS", ["identifier"])
        ]
    # Identical answers: nothing tells a caller whether the account exists.
    assert payloads[0]["errors"] == payloads[1]["errors"] == payloads[2]["errors"]


async def test_sign_in_with_the_password_of_another_user_is_refused(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane", password="Jane1234x")
    await sign_up(client, project.api_key, "bob", password="Bob1234xy")
    payload = await signin_payload(client, project.api_key, "jane", "Bob1234xy")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]


async def test_sign_in_is_scoped_to_the_api_keys_project(
    client: httpx.AsyncClient, project: ProjectKeys, make_project_fn: Any
) -> None:
    other = await make_project_fn("other")
    await sign_up(client, project.api_key, "jane")
    await assert_cannot_sign_in(client, other.api_key, "jane")


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "MISSING_API_KEY"), ({"X-API-Key": "ak_bogus"}, "INVALID_API_KEY")],
)
async def test_sign_in_without_a_valid_api_key_is_forbidden(
    client: httpx.AsyncClient, project: ProjectKeys, headers: dict[str, str], reason: str
) -> None:
    await sign_up(client, project.api_key)
    response = await post(
        client, SIGN_IN, {"input": {"identifier": "jane", "password": PASSWORD}}, headers=headers
    )
    body = response.json()
    assert body["data"] is None
    assert top_error(body) == {"code": "FORBIDDEN", "reason": reason}
    assert session_cookies(response) == []


LIMIT_3 = {"AMEND_SIGNIN_MAX_FAILURES": "3"}


async def signin_response(
    client: httpx.AsyncClient,
    api_key: str,
    identifier: str,
    password: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await post(
        client,
        SIGN_IN,
        {"input": {"identifier": identifier, "password": password}},
        headers={"X-API-Key": api_key, **(headers or {})},
    )


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 200  # a GraphQL error, with the HTTP hint below
    body = response.json()
    assert body["data"] is None
    assert top_error(body) == {"code": "RATE_LIMITED", "reason": "RATE_LIMITED"}
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) > 0
    assert body["errors"][0]["extensions"]["retryAfter"] == int(retry_after)
    assert session_cookies(response) == []


@pytest.mark.parametrize("settings_env", [LIMIT_3], indirect=True)
async def test_sign_in_is_rate_limited_after_max_failures_even_with_the_right_password(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane")
    for _ in range(3):
        payload = await signin_payload(client, project.api_key, "jane", "Wrong123x")
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]
    assert_rate_limited(await signin_response(client, project.api_key, "jane", "Wrong123x"))
    assert_rate_limited(await signin_response(client, project.api_key, "jane", PASSWORD))
    # Other identifiers are unaffected (the per-IP limit is far away).
    await sign_up(client, project.api_key, "bob")
    await assert_signs_in(client, project.api_key, "bob")


@pytest.mark.parametrize("settings_env", [LIMIT_3], indirect=True)
async def test_sign_in_failures_under_the_username_also_throttle_the_email(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane", email="jane@example.com")
    for identifier in ("jane", "JANE", "jane@example.com"):
        await signin_payload(client, project.api_key, identifier, "Wrong123x")
    assert_rate_limited(
        await signin_response(client, project.api_key, "Jane@Example.com", PASSWORD)
    )


@pytest.mark.parametrize("settings_env", [LIMIT_3], indirect=True)
async def test_sign_in_is_rate_limited_for_an_unknown_identifier_too(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    for _ in range(3):
        payload = await signin_payload(client, project.api_key, "ghost", "Wrong123x")
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]
    assert_rate_limited(await signin_response(client, project.api_key, "ghost", "Wrong123x"))


@pytest.mark.parametrize("settings_env", [LIMIT_3], indirect=True)
async def test_successful_sign_ins_do_not_count_towards_the_limit(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane")
    for _ in range(2):
        await signin_payload(client, project.api_key, "jane", "Wrong123x")
    for _ in range(3):
        await assert_signs_in(client, project.api_key, "jane")


@pytest.mark.parametrize(
    "settings_env",
    [
        {
            "AMEND_SIGNIN_MAX_FAILURES_PER_IP": "3",
            "AMEND_TRUSTED_PROXIES": "127.0.0.1",
        }
    ],
    indirect=True,
)
async def test_sign_in_is_rate_limited_per_client_ip_across_identifiers(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane")
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    for identifier in ("alice", "bob", "carol"):
        payload = await signin_payload(
            client, project.api_key, identifier, "Wrong123x", headers=attacker
        )
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"]
    assert_rate_limited(
        await signin_response(client, project.api_key, "jane", PASSWORD, headers=attacker)
    )
    # Another client address is not affected.
    payload = await signin_payload(
        client, project.api_key, "jane", headers={"X-Forwarded-For": "203.0.113.8"}
    )
    assert payload["errors"] == []


@pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_SIGNUPS_PER_IP": "3", "AMEND_TRUSTED_PROXIES": "127.0.0.1"}],
    indirect=True,
)
async def test_sign_up_is_rate_limited_per_client_ip_before_any_hashing(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    flood = {"X-API-Key": project.api_key, "X-Forwarded-For": "203.0.113.7"}
    for name in ("a1", "a2", "a3"):
        body = await gql(
            client, SIGN_UP, {"input": {"username": name, "password": PASSWORD}}, headers=flood
        )
        assert body["data"]["signUp"]["errors"] == []
    client.cookies.clear()
    hashes: list[str] = []
    hash_password = services.hasher.hash

    async def counting(password: str) -> str:
        hashes.append(password)
        return await hash_password(password)

    services.hasher.hash = counting  # type: ignore[method-assign]
    response = await client.post(
        "/graphql",
        json={"query": SIGN_UP, "variables": {"input": {"username": "a4", "password": PASSWORD}}},
        headers=flood,
    )
    assert_rate_limited(response)
    assert hashes == []  # refused before the password was hashed
    response = await client.post(
        f"/1/ce/users?key={project.api_key}",
        json={"username": "a5", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.7"},
    )
    assert response.status_code == 429 and response.json()["error"] == "RATE_LIMITED"
    assert int(response.headers["retry-after"]) > 0
    assert db.sql("SELECT count(*) FROM users WHERE username IN ('a4', 'a5')") == [(0,)]
    # Another client address still signs up.
    other = {"X-API-Key": project.api_key, "X-Forwarded-For": "203.0.113.8"}
    body = await gql(
        client, SIGN_UP, {"input": {"username": "b1", "password": PASSWORD}}, headers=other
    )
    assert body["data"]["signUp"]["errors"] == []


async def test_sign_in_attempts_appear_in_the_session_info(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key, "jane", email="jane@example.com")
    await signin_payload(client, project.api_key, "jane", "Wrong123x")
    payload = await signin_payload(client, project.api_key, "jane")
    body = await gql(client, SESSION, headers=bearer(payload["token"]))
    info = body["data"]["session"]
    attempts = info["signinAttempts"]
    assert [(a["succeeded"], a["reason"], a["identifier"]) for a in attempts] == [
        (True, None, "jane"),  # newest first
        (False, "invalid_credentials", "jane"),
    ]
    for attempt in attempts:
        assert ISO_MS.fullmatch(attempt["createdAt"])
        assert attempt["id"]
    assert [(a["succeeded"], a["identifier"]) for a in info["signupAttempts"]] == [(True, "jane")]


async def test_sign_in_upgrades_a_hash_made_with_outdated_argon2_parameters(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key, "jane")
    old_hash = stored_hash(db, "jane")
    assert "m=64," in old_hash

    stronger = make_settings(db.url, AMEND_ARGON2_MEMORY_KIB="128")
    services = Services.build(stronger)
    try:
        app = create_app(stronger, services=services)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c2:
            payload = await signin_payload(c2, project.api_key, "jane")
            assert payload["errors"] == []
            assert payload["user"]["version"] == 1  # a rehash is not a user change
    finally:
        await services.close()

    new_hash = stored_hash(db, "jane")
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$")
    assert "m=128," in new_hash
    # The upgraded hash still verifies the same password, and the old one was not kept.
    await assert_signs_in(client, project.api_key, "jane")


async def test_sign_in_with_current_parameters_leaves_the_hash_alone(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key, "jane")
    old_hash = stored_hash(db, "jane")
    await assert_signs_in(client, project.api_key, "jane")
    assert stored_hash(db, "jane") == old_hash


# --------------------------------------------------------------------------- signOut


async def test_sign_out_revokes_the_token_and_clears_the_cookie(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    other = await signin_payload(client, project.api_key, "jane")
    response = await post(client, SIGN_OUT, headers=account.auth)
    assert response.json() == {"data": {"signOut": True}}
    (cookie,) = session_cookies(response)
    name, value, flags = cookie_attributes(cookie)
    assert name == "access_token"
    assert value in ("", '""')
    assert "max-age=0" in cookie.lower() or "expires=thu, 01 jan 1970" in cookie.lower()
    assert {"httponly", "path=/"} <= flags

    body = await gql(client, ME, headers=account.auth)
    assert body["data"] is None
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    # Signing out twice with the same token fails the same way.
    again = await gql(client, SIGN_OUT, headers=account.auth)
    assert top_error(again) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    # Only that session ended.
    me = await gql(client, ME, headers=bearer(other["token"]))
    assert me["data"]["me"]["username"] == "jane"


async def test_sign_out_without_a_token_is_unauthenticated(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    response = await post(client, SIGN_OUT)
    assert top_error(response.json()) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}
    assert session_cookies(response) == []


async def test_sign_out_is_recorded_in_the_database(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    await gql(client, SIGN_OUT, headers=account.auth)
    hex_id = account.session_id.removeprefix("signin_")
    (revoked_at,) = db_rows(db, "SELECT revoked_at FROM sessions WHERE id = ?", hex_id)[0]
    assert revoked_at is not None
    actions = [r[0] for r in db_rows(db, "SELECT action FROM audit_events ORDER BY id")]
    assert actions == ["sign_up", "sign_out"]


# --------------------------------------------------------------------------- revokeSession


async def test_revoke_session_ends_another_of_the_callers_sessions(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    second = await signin_payload(client, project.api_key, "jane")
    response = await post(client, REVOKE, {"id": second["session"]["id"]}, headers=account.auth)
    assert response.json() == {"data": {"revokeSession": True}}
    # Revoking another session does not touch the caller's cookie.
    assert session_cookies(response) == []

    body = await gql(client, ME, headers=bearer(second["token"]))
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}
    me = await gql(client, ME, headers=account.auth)
    assert me["data"]["me"]["username"] == "jane"
    info = await gql(client, SESSION, headers=account.auth)
    assert [s["id"] for s in info["data"]["session"]["signins"]] == [account.session_id]


async def test_revoke_session_of_the_current_session_clears_the_cookie(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    response = await post(client, REVOKE, {"id": account.session_id}, headers=account.auth)
    assert response.json() == {"data": {"revokeSession": True}}
    (cookie,) = session_cookies(response)
    assert cookie_attributes(cookie)[1] in ("", '""')
    body = await gql(client, ME, headers=account.auth)
    assert top_error(body)["reason"] == "SESSION_REVOKED"


async def test_revoke_session_of_another_users_session_is_record_not_found(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    jane = await sign_up(client, project.api_key, "jane")
    bob = await sign_up(client, project.api_key, "bob")
    body = await gql(client, REVOKE, {"id": bob.session_id}, headers=jane.auth)
    assert body["data"] is None
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "RECORD_NOT_FOUND"}
    me = await gql(client, ME, headers=bob.auth)
    assert me["data"]["me"]["username"] == "bob"


@pytest.mark.parametrize(
    "session_id",
    ["signin_" + "0" * 32, "signin_nothex", "not-a-session", "", "user_" + "a" * 32],
)
async def test_revoke_session_with_a_made_up_id_is_record_not_found(
    client: httpx.AsyncClient, project: ProjectKeys, session_id: str
) -> None:
    jane = await sign_up(client, project.api_key, "jane")
    body = await gql(client, REVOKE, {"id": session_id}, headers=jane.auth)
    assert body["data"] is None
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "RECORD_NOT_FOUND"}
    me = await gql(client, ME, headers=jane.auth)
    assert me["data"]["me"]["username"] == "jane"


async def test_revoke_session_for_another_user_answers_like_a_made_up_id(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    jane = await sign_up(client, project.api_key, "jane")
    bob = await sign_up(client, project.api_key, "bob")
    existing = await gql(client, REVOKE, {"id": bob.session_id}, headers=jane.auth)
    made_up = await gql(client, REVOKE, {"id": "signin_" + "f" * 32}, headers=jane.auth)
    strip = [{k: v for k, v in e.items() if k != "locations"} for e in existing["errors"]]
    assert strip == [{k: v for k, v in e.items() if k != "locations"} for e in made_up["errors"]]


async def test_revoke_session_of_an_already_revoked_session_is_record_not_found(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    second = await signin_payload(client, project.api_key, "jane")
    await gql(client, REVOKE, {"id": second["session"]["id"]}, headers=account.auth)
    body = await gql(client, REVOKE, {"id": second["session"]["id"]}, headers=account.auth)
    assert top_error(body) == {"code": "BAD_REQUEST", "reason": "RECORD_NOT_FOUND"}


# --------------------------------------------------------------------------- me / session


async def test_me_returns_the_callers_user(client: httpx.AsyncClient, project: ProjectKeys) -> None:
    account = await sign_up(
        client, project.api_key, "jane", email="jane@example.com", data={"k": [1, 2]}
    )
    await sign_up(client, project.api_key, "bob")
    body = await gql(client, ME, headers=account.auth)
    assert body == {"data": {"me": account.user}}


async def test_me_without_a_token_is_unauthenticated(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    body = await gql(client, ME)
    assert body["data"] is None
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "MISSING_TOKEN"}
    assert body["errors"][0]["path"] == ["me"]


async def test_session_lists_active_signins_and_marks_the_current_one(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    second = await signin_payload(client, project.api_key, "jane")
    body = await gql(client, SESSION, headers=bearer(second["token"]))
    info = body["data"]["session"]
    signins = info["signins"]
    assert {s["id"] for s in signins} == {account.session_id, second["session"]["id"]}
    assert [s["id"] for s in signins if s["current"]] == [second["session"]["id"]]
    for s in signins:
        assert SESSION_ID.fullmatch(s["id"])
        assert s["userId"] == f"user_{account.unique_id}"
        assert ISO_MS.fullmatch(s["createdAt"])
        assert ISO_MS.fullmatch(s["expiresAt"])
    assert info["activeSignin"] == {
        "id": second["session"]["id"],
        "userId": f"user_{account.unique_id}",
        "current": True,
    }
    assert [a["succeeded"] for a in info["signinAttempts"]] == [True]
    assert len(info["signupAttempts"]) == 1

    # From the first session's point of view, the first one is current.
    body = await gql(client, SESSION, headers=account.auth)
    assert body["data"]["session"]["activeSignin"]["id"] == account.session_id


async def test_session_does_not_show_other_users_signins(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    jane = await sign_up(client, project.api_key, "jane")
    await sign_up(client, project.api_key, "bob")
    await signin_payload(client, project.api_key, "bob", "Wrong123x")
    body = await gql(client, SESSION, headers=jane.auth)
    info = body["data"]["session"]
    assert [s["id"] for s in info["signins"]] == [jane.session_id]
    assert info["signinAttempts"] == []


async def test_me_and_session_reject_a_revoked_token(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    await gql(client, SIGN_OUT, headers=account.auth)
    for query in (ME, SESSION):
        body = await gql(client, query, headers=account.auth)
        assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}


@pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_SIGNUPS_PER_IP": "4", "AMEND_TRUSTED_PROXIES": "127.0.0.1"}],
    indirect=True,
)
async def test_refused_sign_ups_count_toward_the_per_ip_limit_and_are_never_hashed(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    prober = {"X-API-Key": project.api_key, "X-Forwarded-For": "203.0.113.9"}
    await sign_up(client, project.api_key, "jane", email="jane@example.com")
    client.cookies.clear()
    hashes: list[str] = []
    hash_password = services.hasher.hash

    async def counting(password: str) -> str:
        hashes.append(password)
        return await hash_password(password)

    services.hasher.hash = counting  # type: ignore[method-assign]
    refusals = [
        ({"username": "JANE", "password": PASSWORD}, "USERNAME_TAKEN"),
        ({"username": "j2", "password": PASSWORD, "email": "Jane@Example.com"}, "EMAIL_TAKEN"),
        ({"username": "j3", "password": "password1"}, "PASSWORD_POLICY"),
    ]
    for given, code in refusals:
        body = await gql(client, SIGN_UP, {"input": given}, headers=prober)
        assert [e["code"] for e in body["data"]["signUp"]["errors"]] == [code]
    # The REST sign-up is the same service: a taken name there counts too.
    response = await client.post(
        f"/1/ce/users?key={project.api_key}",
        json={"username": "jane", "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.9"},
    )
    assert response.status_code == 400 and response.json()["error"] == "USERNAME_TAKEN"
    assert hashes == []  # no refused sign-up cost a hash
    # Four attempts used the address's allowance: the next one, even a valid one, is refused,
    # so taken names and addresses cannot be listed without limit.
    response = await client.post(
        "/graphql",
        json={"query": SIGN_UP, "variables": {"input": {"username": "j4", "password": PASSWORD}}},
        headers=prober,
    )
    assert_rate_limited(response)
    assert hashes == []
    assert db.sql("SELECT count(*) FROM users") == [(1,)]
