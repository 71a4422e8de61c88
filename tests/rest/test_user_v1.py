"""§7.2 — the credentials API: `PUT|POST /api/user/v1/update` and the `POST /api/user/v1/login`
extension (SPEC §4, §5, §7.2, §8; seed 001).

Every answer is the documented envelope `{"code", "message", "result"}` (exactly those keys)
with HTTP status `code // 100` (200 for code 0). Every refused change is followed by a
read-back (the record through the master key, the account row, the sessions, and `me` with the
still-valid token) proving that nothing was written.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import Any

import httpx
import jwt
import pytest

from api.core.models import Plan
from api.services import projects
from api.services.container import Services
from tests.conftest import PASSWORD, SECRET, ProjectKeys
from tests.db import TestDB
from tests.gql import (
    ME,
    SIGN_OUT,
    SIGN_UP,
    Account,
    age_sessions,
    cookie_cleared,
    gql,
    read_me,
    read_record,
    sign_in,
    sign_up,
    sql,
    top_error,
)

UPDATE = "/api/user/v1/update"
LOGIN = "/api/user/v1/login"
EMAIL = "jane@example.com"
NEW_EMAIL = "jane.new@example.com"
NEW_PASSWORD = "N3wSecret42x"
APP_ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example.com"


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL)


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def envelope(response: httpx.Response) -> dict[str, Any]:
    """The documented envelope: exactly {code, message, result}; HTTP status = code // 100."""
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict), body
    assert set(body) == {"code", "message", "result"}, body
    assert isinstance(body["code"], int)
    assert isinstance(body["message"], str)
    expected_status = 200 if body["code"] == 0 else body["code"] // 100
    assert response.status_code == expected_status, (response.status_code, body)
    return body


def assert_ok(response: httpx.Response) -> None:
    assert envelope(response) == {"code": 0, "message": "", "result": None}
    assert response.status_code == 200


def assert_code(response: httpx.Response, code: int) -> dict[str, Any]:
    body = envelope(response)
    assert body["code"] == code, body
    assert response.status_code == code // 100
    assert body["message"], body  # says why
    assert body["result"] is None
    return body


def token_headers(token: str) -> dict[str, str]:
    return {"X-Access-Token": token}


async def change(
    client: httpx.AsyncClient,
    token: str | None,
    body: Any = None,
    *,
    method: str = "PUT",
    headers: dict[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    all_headers = {**(token_headers(token) if token is not None else {}), **(headers or {})}
    if body is not None:
        kwargs["json"] = body
    return await client.request(method, UPDATE, headers=all_headers, **kwargs)


async def login(
    client: httpx.AsyncClient,
    api_key: str | None,
    eml: Any,
    pwd: Any,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    query = {**({"key": api_key} if api_key is not None else {}), **(params or {})}
    return await client.post(
        LOGIN, params=query, json={"eml": eml, "pwd": pwd}, headers=headers or {}
    )


async def login_token(client: httpx.AsyncClient, api_key: str, eml: str, pwd: str) -> str:
    response = await login(client, api_key, eml, pwd)
    body = envelope(response)
    assert body["code"] == 0, body
    token = body["result"]["token"]
    assert isinstance(token, str)
    return token


async def logs_in(client: httpx.AsyncClient, api_key: str, eml: str, pwd: str) -> bool:
    """True on code 0, False on 40105 (anything else fails the test)."""
    body = envelope(await login(client, api_key, eml, pwd))
    assert body["code"] in (0, 40105), body
    return body["code"] == 0


async def state(
    client: httpx.AsyncClient, project: ProjectKeys, account: Account, db: TestDB
) -> dict[str, Any]:
    """Everything a credential change could touch, read without the user's token."""
    record = await read_record(client, project.master_key, account.unique_id)
    rows = sql(
        db,
        "SELECT email, email_canonical, email_verified, password_hash, version, updated_at "
        "FROM users WHERE unique_id = ?",
        (account.unique_id,),
    )
    sessions = sql(db, "SELECT id, revoked_at FROM sessions ORDER BY id")
    audit = sql(db, "SELECT COUNT(*) FROM audit_events WHERE action = 'update_credentials'")
    return {"record": record, "row": rows, "sessions": sessions, "audit": audit}


async def assert_unchanged(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    account: Account,
    db: TestDB,
    before: dict[str, Any],
    *,
    token_alive: bool = True,
    old_password_logs_in: bool = True,
) -> None:
    assert await state(client, project, account, db) == before
    assert before["audit"] == [(0,)]
    if token_alive:
        me = await read_me(client, account.token)
        assert me["version"] == before["record"]["version"]
    if old_password_logs_in:
        assert await logs_in(client, project.api_key, EMAIL, account.password)


async def graphql_refuses(client: httpx.AsyncClient, token: str) -> str | None:
    body = await gql(client, ME, headers={"Authorization": f"Bearer {token}"})
    return top_error(body)["reason"] if body.get("errors") else None


def bare_token(services: Services, project_id: str, account: Account, **claims: int) -> str:
    now = int(time.time())
    values = {"iat": now, "exp": now + 3600, **claims}
    return services.tokens.issue(
        project_id=project_id,
        unique_id=account.unique_id,
        session_hex=account.session_id.removeprefix("signin_"),
        iat=values["iat"],
        exp=values["exp"],
    )


# --------------------------------------------------------------------------------------------
# Success
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize(
    ("body", "new_email", "new_password"),
    [
        pytest.param({"eml": NEW_EMAIL}, NEW_EMAIL, PASSWORD, id="email_only"),
        pytest.param({"pwd": NEW_PASSWORD}, EMAIL, NEW_PASSWORD, id="password_only"),
        pytest.param(
            {"eml": NEW_EMAIL, "pwd": NEW_PASSWORD},
            NEW_EMAIL,
            NEW_PASSWORD,
            id="email_and_password",
        ),
        pytest.param(
            {"eml": NEW_EMAIL, "pwd": None}, NEW_EMAIL, PASSWORD, id="email_with_null_password"
        ),
        pytest.param(
            {"eml": None, "pwd": NEW_PASSWORD}, EMAIL, NEW_PASSWORD, id="password_with_null_email"
        ),
    ],
)
async def test_change_succeeds_revokes_every_token_and_new_credentials_sign_in(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    method: str,
    body: dict[str, Any],
    new_email: str,
    new_password: str,
) -> None:
    sql(db, "UPDATE users SET email_verified = ? WHERE unique_id = ?", (True, jane.unique_id))
    # More tokens of the same user, from both sign-in routes.
    other_tokens = [
        await login_token(client, project.api_key, EMAIL, PASSWORD),
        (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"],
    ]
    before = await read_record(client, project.master_key, jane.unique_id)

    response = await change(client, jane.token, body, method=method)

    assert_ok(response)
    assert cookie_cleared(response)
    # Every token of the user is invalid afterwards, on this API and on GraphQL.
    for token in (jane.token, *other_tokens):
        assert await graphql_refuses(client, token) == "SESSION_REVOKED"
        assert_code(await change(client, token, {"pwd": "An0therOne9"}), 40102)
    assert sql(db, "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL") == [(0,)]
    # The new credentials sign in; the old ones do not.
    assert await logs_in(client, project.api_key, new_email, new_password)
    if new_email != EMAIL:
        assert not await logs_in(client, project.api_key, EMAIL, new_password)
    if new_password != PASSWORD:
        assert not await logs_in(client, project.api_key, new_email, PASSWORD)
    me = await read_me(client, await login_token(client, project.api_key, new_email, new_password))
    assert me["email"] == new_email
    assert me["version"] == before["version"] + 1
    # An email change resets email_verified; a password-only change keeps it.
    assert me["emailVerified"] is (new_email == EMAIL)
    # The document (username, custom data) is untouched.
    after = await read_record(client, project.master_key, jane.unique_id)
    assert after["data"] == before["data"]


async def test_bearer_token_is_accepted_too(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # SPEC §4: one auth context; the document's header is X-Access-Token, Bearer works as well.
    response = await change(
        client, None, {"pwd": NEW_PASSWORD}, headers={"Authorization": f"Bearer {jane.token}"}
    )
    assert_ok(response)
    assert await logs_in(client, project.api_key, EMAIL, NEW_PASSWORD)


async def test_session_cookie_is_accepted_and_cleared(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await change(
        client, None, {"pwd": NEW_PASSWORD}, headers={"Cookie": f"access_token={jane.token}"}
    )
    assert_ok(response)
    assert cookie_cleared(response)
    assert await graphql_refuses(client, jane.token) == "SESSION_REVOKED"


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_SECURE": "false"}], indirect=True)
async def test_cookie_jar_session_ends_with_the_change(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # A browser-like client: the cookie set by signIn is sent back, and cleared by the change.
    client.cookies.clear()
    signed = await sign_in(client, project.api_key, "jane")
    assert signed["data"]["signIn"]["errors"] == []
    assert client.cookies.get("access_token")
    assert (await client.get("/me")).status_code == 200
    response = await change(client, None, {"pwd": NEW_PASSWORD})
    assert_ok(response)
    assert cookie_cleared(response)
    assert client.cookies.get("access_token") is None
    assert (await client.get("/me")).json()["errors"][0]["code"] == "MISSING_TOKEN"
    assert_code(await change(client, None, {"pwd": "An0therOne9"}), 40101)


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_NAME": "amend_sid"}], indirect=True)
async def test_configured_cookie_name_is_read_and_cleared(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    before = await read_record(client, project.master_key, jane.unique_id)
    wrong = await change(
        client, None, {"pwd": NEW_PASSWORD}, headers={"Cookie": f"access_token={jane.token}"}
    )
    assert_code(wrong, 40101)
    assert await read_record(client, project.master_key, jane.unique_id) == before
    response = await change(
        client, None, {"pwd": NEW_PASSWORD}, headers={"Cookie": f"amend_sid={jane.token}"}
    )
    assert_ok(response)
    assert cookie_cleared(response, "amend_sid")


async def test_email_is_normalized_and_signs_in_case_insensitively(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    assert_ok(await change(client, jane.token, {"eml": " Jane.New@EXAMPLE.com "}))
    me = await read_me(
        client, await login_token(client, project.api_key, "JANE.NEW@example.com", PASSWORD)
    )
    assert me["email"] == "Jane.New@example.com"


async def test_success_is_audited_without_values(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    assert_ok(await change(client, jane.token, {"eml": NEW_EMAIL, "pwd": NEW_PASSWORD}))
    rows = sql(
        db,
        "SELECT action, actor, CAST(fields AS TEXT) FROM audit_events "
        "WHERE action = 'update_credentials'",
    )
    assert len(rows) == 1
    action, actor, fields = rows[0]
    assert (action, actor) == ("update_credentials", "user")
    assert NEW_PASSWORD not in fields and NEW_EMAIL not in fields
    assert set(json.loads(fields)) == {"email", "password"}


# --------------------------------------------------------------------------------------------
# 40001 — invalid body
# --------------------------------------------------------------------------------------------

JSON_TYPE = {"Content-Type": "application/json"}


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"content": b"{not json", "headers": JSON_TYPE}, id="non_json_body"),
        pytest.param({"content": b'{"pwd": NaN}', "headers": JSON_TYPE}, id="nan_is_not_json"),
        pytest.param(
            {"content": b'{"pwd": "\xff\xfeabc123"}', "headers": JSON_TYPE},
            id="invalid_utf8_body",
        ),
        pytest.param({"content": b'{"pwd": "N3wSecret42x"', "headers": JSON_TYPE}, id="truncated"),
        pytest.param({"json": ["N3wSecret42x"]}, id="array_is_not_an_object"),
        pytest.param({"json": "N3wSecret42x"}, id="string_is_not_an_object"),
        pytest.param({"json": 42}, id="number_is_not_an_object"),
        pytest.param({"content": b"null", "headers": JSON_TYPE}, id="null_is_not_an_object"),
        pytest.param({"content": b"", "headers": JSON_TYPE}, id="empty_body"),
        pytest.param({"content": b"  \n ", "headers": JSON_TYPE}, id="blank_body"),
        pytest.param({}, id="no_body_no_content_type"),
        pytest.param(
            {"content": b'{"pwd": "N3wSecret42x"}', "headers": {"Content-Type": "text/plain"}},
            id="text_plain_content_type",
        ),
        pytest.param({"data": {"pwd": NEW_PASSWORD}}, id="form_content_type"),
        pytest.param(
            {"content": b'{"pwd": "N3wSecret42x"}', "headers": {"Content-Type": ""}},
            id="empty_content_type",
        ),
        pytest.param(
            {"content": b'{"pwd": "N3wSecret42x"}', "headers": {"Content-Type": "application/xml"}},
            id="xml_content_type",
        ),
        pytest.param({"json": {"pwd": NEW_PASSWORD, "name": "x"}}, id="unknown_member"),
        pytest.param({"json": {"email": NEW_EMAIL}}, id="graphql_name_email_is_unknown"),
        pytest.param({"json": {"password": NEW_PASSWORD}}, id="graphql_name_password_is_unknown"),
        pytest.param(
            {"json": {"pwd": NEW_PASSWORD, "currentPassword": PASSWORD}},
            id="current_password_is_unknown_here",
        ),
        pytest.param({"json": {"eml": 42}}, id="number_email"),
        pytest.param({"json": {"eml": True}}, id="boolean_email"),
        pytest.param({"json": {"eml": [NEW_EMAIL]}}, id="array_email"),
        pytest.param({"json": {"pwd": 12345678}}, id="number_password"),
        pytest.param({"json": {"pwd": {"value": NEW_PASSWORD}}}, id="object_password"),
        pytest.param({"json": {"eml": NEW_EMAIL, "pwd": 1}}, id="wrong_type_blocks_the_email"),
        pytest.param({"json": {}}, id="neither_eml_nor_pwd"),
        pytest.param({"json": {"eml": None, "pwd": None}}, id="both_null"),
        pytest.param({"json": {"eml": "JANE@Example.com"}}, id="current_email_changes_nothing"),
    ],
)
async def test_invalid_body_is_40001_and_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    method: str,
    request_kwargs: dict[str, Any],
) -> None:
    before = await state(client, project, jane, db)
    kwargs = dict(request_kwargs)
    headers = {**token_headers(jane.token), **kwargs.pop("headers", {})}
    response = await client.request(method, UPDATE, headers=headers, **kwargs)
    assert_code(response, 40001)
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, db, before)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
async def test_json_content_type_with_parameters_or_case_is_accepted(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, content_type: str
) -> None:
    response = await client.put(
        UPDATE,
        content=b'{"pwd": "N3wSecret42x"}',
        headers={**token_headers(jane.token), "Content-Type": content_type},
    )
    assert_ok(response)
    assert await logs_in(client, project.api_key, EMAIL, NEW_PASSWORD)


# --------------------------------------------------------------------------------------------
# 40002 — password policy; 40003 — invalid email
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"pwd": "abc1"}, 40002, id="too_short_password"),
        pytest.param({"pwd": "a1" * 16}, 40002, id="too_long_password"),
        pytest.param({"pwd": "abcdefghij"}, 40002, id="password_without_digit"),
        pytest.param({"pwd": "1234567890"}, 40002, id="password_without_letter"),
        pytest.param({"pwd": ""}, 40002, id="empty_password"),
        pytest.param({"pwd": "password1"}, 40002, id="common_password"),
        pytest.param({"pwd": "Password1"}, 40002, id="common_password_any_case"),
        pytest.param({"pwd": "abc\x00123"}, 40002, id="password_with_control_character"),
        pytest.param(
            {"eml": "kate99x@example.com", "pwd": "kate99x"},
            40002,
            id="password_equal_to_new_email_name",
        ),
        pytest.param({"pwd": PASSWORD}, 40002, id="password_same_as_current"),
        pytest.param({"eml": NEW_EMAIL, "pwd": "abc1"}, 40002, id="weak_password_blocks_the_email"),
        pytest.param({"eml": "not-an-email"}, 40003, id="malformed_email"),
        pytest.param({"eml": ""}, 40003, id="empty_email"),
        pytest.param({"eml": "   "}, 40003, id="blank_email"),
        pytest.param({"eml": "jane@@example.com"}, 40003, id="double_at_email"),
        pytest.param({"eml": "jane@example"}, 40003, id="email_without_tld"),
        pytest.param({"eml": "a" * 250 + "@example.com"}, 40003, id="too_long_email"),
        pytest.param(
            {"eml": "not-an-email", "pwd": NEW_PASSWORD}, 40003, id="invalid_email_blocks_password"
        ),
    ],
)
async def test_policy_and_email_refusals_write_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    body: dict[str, Any],
    code: int,
) -> None:
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, body)
    assert_code(response, code)
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, db, before)


async def test_password_equal_to_username_is_40002(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    kate = await sign_up(client, project.api_key, "kate2024x", email="kate@example.com")
    before = await state(client, project, kate, db)
    assert_code(await change(client, kate.token, {"pwd": "KATE2024x"}), 40002)
    assert await state(client, project, kate, db) == before


# --------------------------------------------------------------------------------------------
# 40901 — email already used
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"eml": "bob@example.com"}, id="same_case"),
        pytest.param({"eml": "BOB@Example.COM"}, id="other_case"),
        pytest.param({"eml": " bob@example.com "}, id="surrounding_spaces"),
        pytest.param({"eml": "bob@example.com", "pwd": NEW_PASSWORD}, id="with_password"),
    ],
)
async def test_email_of_another_user_is_40901(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    body: dict[str, Any],
) -> None:
    await sign_up(client, project.api_key, "bob", email="bob@example.com")
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, body)
    assert_code(response, 40901)
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, db, before)


async def test_email_of_a_user_in_another_endpoint_is_free(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, services: Services
) -> None:
    await projects.create_endpoint(services, project=project.id, name="staff")
    body = await gql(
        client,
        SIGN_UP,
        {
            "input": {
                "endpoint": "staff",
                "username": "bob",
                "password": PASSWORD,
                "email": NEW_EMAIL,
            }
        },
        headers={"X-API-Key": project.api_key},
    )
    assert body["data"]["signUp"]["errors"] == []
    assert_ok(await change(client, jane.token, {"eml": NEW_EMAIL}))


# --------------------------------------------------------------------------------------------
# 401xx — tokens
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "POST"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no_token"),
        pytest.param({"X-Access-Token": ""}, id="empty_x_access_token"),
        pytest.param({"Cookie": "other=1"}, id="unrelated_cookie"),
    ],
)
async def test_missing_token_is_40101(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    method: str,
    headers: dict[str, str],
) -> None:
    before = await state(client, project, jane, db)
    response = await client.request(method, UPDATE, json={"pwd": NEW_PASSWORD}, headers=headers)
    assert_code(response, 40101)
    await assert_unchanged(client, project, jane, db, before)


def _b64(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def _forged(
    account: Account, project_id: str, *, key: str = SECRET, alg: str = "HS256", **claims: Any
) -> str:
    """A token for the account's live session, with one thing wrong."""
    now = int(time.time())
    payload = {
        "iss": "amend",
        "aud": project_id,
        "sub": account.unique_id,
        "sid": account.session_id,
        "iat": now,
        "exp": now + 600,
        **claims,
    }
    if alg == "HS256":
        return jwt.encode(payload, key, algorithm=alg)
    # Signed by hand: PyJWT warns about short HS512 keys (warnings are errors here).
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    if alg == "none":
        return f"{header}.{body}."
    digest = hmac.new(key.encode(), f"{header}.{body}".encode(), hashlib.sha512).digest()
    return f"{header}.{body}.{_b64(digest)}"


def _bad_signature(token: str) -> str:
    header, body, signature = token.split(".")
    flipped = bytearray(base64.urlsafe_b64decode(signature + "=="))
    flipped[0] ^= 0xFF
    return f"{header}.{body}.{_b64(bytes(flipped))}"


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(lambda a, p: {"X-Access-Token": "not-a-jwt"}, id="garbage_token"),
        pytest.param(lambda a, p: {"X-Access-Token": _bad_signature(a.token)}, id="bad_signature"),
        pytest.param(lambda a, p: {"X-Access-Token": _forged(a, p.id, alg="none")}, id="alg_none"),
        pytest.param(
            lambda a, p: {"X-Access-Token": _forged(a, p.id, iss="someone-else")},
            id="wrong_issuer",
        ),
        pytest.param(
            lambda a, p: {"X-Access-Token": _forged(a, "prj_" + "0" * 32)},
            id="audience_of_no_project",
        ),
        pytest.param(
            lambda a, p: {"X-Access-Token": _forged(a, p.id, sub="0" * 32)},
            id="subject_of_another_user",
        ),
        pytest.param(
            lambda a, p: {"X-Access-Token": _forged(a, p.id, key="x" * 48)},
            id="signed_with_another_secret",
        ),
        pytest.param(
            lambda a, p: {"X-Access-Token": _forged(a, p.id, alg="HS512")}, id="hs512_is_refused"
        ),
        pytest.param(
            lambda a, p: {
                "X-Access-Token": jwt.encode({"sub": a.unique_id}, SECRET, algorithm="HS256")
            },
            id="missing_claims",
        ),
        pytest.param(
            lambda a, p: {"Authorization": f"Basic {a.token}"}, id="non_bearer_authorization"
        ),
        pytest.param(
            lambda a, p: {"Authorization": "Bearer nope", "X-Access-Token": a.token},
            id="invalid_bearer_never_falls_back",
        ),
    ],
)
async def test_invalid_token_is_40102(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    make_headers: Any,
) -> None:
    before = await state(client, project, jane, db)
    response = await change(
        client, None, {"pwd": NEW_PASSWORD}, headers=make_headers(jane, project)
    )
    assert_code(response, 40102)
    await assert_unchanged(client, project, jane, db, before)


async def test_token_of_a_deleted_user_is_40102(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    kate = await sign_up(client, project.api_key, "kate", email="kate@example.com")
    # Deleted behind the service's back: the token's session no longer leads to a user.
    sql(db, "DELETE FROM users WHERE unique_id = ?", (kate.unique_id,))
    response = await change(client, kate.token, {"pwd": NEW_PASSWORD})
    assert_code(response, 40102)


async def test_token_of_another_project_than_the_api_key_is_40102(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    make_project_fn: Any,
) -> None:
    other = await make_project_fn("other")
    before = await state(client, project, jane, db)
    response = await change(
        client, jane.token, {"pwd": NEW_PASSWORD}, headers={"X-API-Key": other.api_key}
    )
    assert_code(response, 40102)
    await assert_unchanged(client, project, jane, db, before)


@pytest.mark.parametrize("how", ["sign_out", "earlier_change"])
async def test_revoked_token_is_40102(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB, how: str
) -> None:
    if how == "sign_out":
        body = await gql(client, SIGN_OUT, headers=jane.auth)
        assert body["data"] == {"signOut": True}
        expected_password = PASSWORD
    else:
        assert_ok(await change(client, jane.token, {"pwd": NEW_PASSWORD}))
        expected_password = NEW_PASSWORD
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, {"pwd": "An0therOne9"})
    assert_code(response, 40102)
    assert await state(client, project, jane, db) == before
    assert await logs_in(client, project.api_key, EMAIL, expected_password)
    assert not await logs_in(client, project.api_key, EMAIL, "An0therOne9")


async def test_expired_token_is_40103(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    services: Services,
) -> None:
    now = int(time.time())
    expired = bare_token(services, project.id, jane, iat=now - 7200, exp=now - 3600)
    before = await state(client, project, jane, db)
    response = await change(client, expired, {"pwd": NEW_PASSWORD})
    assert_code(response, 40103)
    await assert_unchanged(client, project, jane, db, before)


async def test_expired_session_is_40103(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    # The JWT is still within its exp, but the session behind it has expired.
    sql(db, "UPDATE sessions SET expires_at = ?", ((int(time.time()) - 60) * 1000,))
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, {"pwd": NEW_PASSWORD})
    assert_code(response, 40103)
    await assert_unchanged(client, project, jane, db, before, token_alive=False)


# --------------------------------------------------------------------------------------------
# 40104 — reauthentication required
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"pwd": NEW_PASSWORD}, id="password"),
        pytest.param({"eml": NEW_EMAIL}, id="email"),
        pytest.param({"eml": NEW_EMAIL, "pwd": NEW_PASSWORD}, id="both"),
    ],
)
async def test_aged_session_is_40104(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    body: dict[str, Any],
) -> None:
    age_sessions(db, 601)
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, body)
    assert_code(response, 40104)
    assert not cookie_cleared(response)
    await assert_unchanged(client, project, jane, db, before)


async def test_session_inside_the_window_may_change(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    age_sessions(db, 500)  # default window: 600 s
    assert_ok(await change(client, jane.token, {"pwd": NEW_PASSWORD}))


@pytest.mark.parametrize("settings_env", [{"AMEND_REAUTH_WINDOW_SECONDS": "0"}], indirect=True)
async def test_zero_reauth_window_is_40104(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    await asyncio.sleep(0.01)
    before = await state(client, project, jane, db)
    assert_code(await change(client, jane.token, {"pwd": NEW_PASSWORD}), 40104)
    await assert_unchanged(client, project, jane, db, before, old_password_logs_in=False)
    # A fresh sign-in is still older than a zero window: this API has no currentPassword.
    fresh = await login_token(client, project.api_key, EMAIL, PASSWORD)
    await asyncio.sleep(0.01)
    assert_code(await change(client, fresh, {"pwd": NEW_PASSWORD}), 40104)


@pytest.mark.parametrize("settings_env", [{"AMEND_REAUTH_WINDOW_SECONDS": "60"}], indirect=True)
async def test_configured_reauth_window_applies(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    age_sessions(db, 61)
    before = await state(client, project, jane, db)
    assert_code(await change(client, jane.token, {"pwd": NEW_PASSWORD}), 40104)
    await assert_unchanged(client, project, jane, db, before)
    # Signing in again proves presence.
    fresh = await login_token(client, project.api_key, EMAIL, PASSWORD)
    assert_ok(await change(client, fresh, {"pwd": NEW_PASSWORD}))


# --------------------------------------------------------------------------------------------
# 40301 — plan; 40302 — API key or origin
# --------------------------------------------------------------------------------------------


async def test_free_plan_is_40301(
    client: httpx.AsyncClient, make_project_fn: Any, db: TestDB
) -> None:
    free = await make_project_fn("freeproj", plan=Plan.FREE)
    account = await sign_up(client, free.api_key, "jane", email=EMAIL)
    before = await state(client, free, account, db)
    for body in ({"pwd": NEW_PASSWORD}, {"eml": NEW_EMAIL}):
        response = await change(client, account.token, body)
        assert_code(response, 40301)
    await assert_unchanged(client, free, account, db, before)


@pytest.mark.parametrize("plan", [Plan.PERSONAL, Plan.BUSINESS])
async def test_personal_plan_and_above_may_change(
    client: httpx.AsyncClient, make_project_fn: Any, plan: Plan
) -> None:
    keys = await make_project_fn(f"proj-{plan.value}", plan=plan)
    account = await sign_up(client, keys.api_key, "jane", email=EMAIL)
    assert_ok(await change(client, account.token, {"pwd": NEW_PASSWORD}))


@pytest.fixture
async def guarded(make_project_fn: Any) -> ProjectKeys:
    """A project that lists one origin and refuses requests without an Origin."""
    return await make_project_fn("guarded", origins=[APP_ORIGIN], allow_no_origin=False)


@pytest.fixture
async def guarded_jane(client: httpx.AsyncClient, guarded: ProjectKeys) -> Account:
    body = await gql(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": PASSWORD, "email": EMAIL}},
        headers={"X-API-Key": guarded.api_key, "Origin": APP_ORIGIN},
    )
    payload = body["data"]["signUp"]
    assert payload["errors"] == [], payload
    return Account(
        "jane", PASSWORD, payload["token"], payload["user"]["uniqueId"], payload["session"]["id"]
    )


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": EVIL_ORIGIN}, id="origin_not_listed"),
        pytest.param({"Origin": "null"}, id="null_origin"),
        pytest.param({"Origin": APP_ORIGIN + ":8443"}, id="origin_other_port"),
        pytest.param({}, id="no_origin"),
    ],
)
async def test_refused_origin_on_update_is_40302(
    client: httpx.AsyncClient,
    guarded: ProjectKeys,
    guarded_jane: Account,
    db: TestDB,
    headers: dict[str, str],
) -> None:
    before = await state(client, guarded, guarded_jane, db)
    response = await change(client, guarded_jane.token, {"pwd": NEW_PASSWORD}, headers=headers)
    assert_code(response, 40302)
    assert await state(client, guarded, guarded_jane, db) == before
    # The listed origin goes through.
    ok = await change(
        client, guarded_jane.token, {"pwd": NEW_PASSWORD}, headers={"Origin": APP_ORIGIN}
    )
    assert_ok(ok)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-API-Key": "not-a-key"}, id="unknown_api_key_header"),
        pytest.param({"X-Master-Key": "not-a-key"}, id="unknown_master_key"),
    ],
)
async def test_invalid_key_on_update_is_40302(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    db: TestDB,
    headers: dict[str, str],
) -> None:
    before = await state(client, project, jane, db)
    response = await change(client, jane.token, {"pwd": NEW_PASSWORD}, headers=headers)
    assert_code(response, 40302)
    await assert_unchanged(client, project, jane, db, before)


async def test_invalid_key_in_query_on_update_is_40302(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    before = await state(client, project, jane, db)
    response = await client.put(
        UPDATE,
        params={"key": "nope"},
        json={"pwd": NEW_PASSWORD},
        headers=token_headers(jane.token),
    )
    assert_code(response, 40302)
    await assert_unchanged(client, project, jane, db, before)


# --------------------------------------------------------------------------------------------
# 41301 — body too large; 42901 — rate limited
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_body_over_the_limit_is_41301(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB, method: str
) -> None:
    before = await state(client, project, jane, db)
    big = {"eml": NEW_EMAIL, "pwd": NEW_PASSWORD, "pad": "x" * 1100}
    response = await change(client, jane.token, big, method=method)
    assert_code(response, 41301)
    await assert_unchanged(client, project, jane, db, before)


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
async def test_body_at_the_limit_is_read(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    prefix = b'{"pwd": "N3wSecret42x", "eml": "'
    suffix = b'@example.com"}'
    local = b"a" * 60
    padding = b" " * (1024 - len(prefix) - len(local) - len(suffix))
    body = prefix + local + suffix + padding
    assert len(body) == 1024
    response = await client.put(
        UPDATE, content=body, headers={**token_headers(jane.token), **JSON_TYPE}
    )
    assert_ok(response)


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
async def test_chunked_body_over_the_limit_is_41301(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    # No Content-Length: the limit holds while the body streams in.
    async def chunks() -> Any:
        yield b'{"pwd": "N3wSecret42x", "pad": "'
        for _ in range(4):
            yield b"x" * 400
        yield b'"}'

    before = await state(client, project, jane, db)
    response = await client.put(
        UPDATE, content=chunks(), headers={**token_headers(jane.token), **JSON_TYPE}
    )
    assert "content-length" not in response.request.headers
    assert_code(response, 41301)
    await assert_unchanged(client, project, jane, db, before)


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
async def test_login_body_over_the_limit_is_41301(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await login(client, project.api_key, EMAIL, "x" * 1100)
    assert_code(response, 41301)


@pytest.mark.parametrize("settings_env", [{"AMEND_SIGNIN_MAX_FAILURES": "3"}], indirect=True)
async def test_login_is_throttled_with_42901_and_retry_after(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    for _ in range(3):
        assert_code(await login(client, project.api_key, EMAIL, "Wr0ngGuess1"), 40105)
    before = await state(client, project, jane, db)
    # Even the right password is refused while throttled, by email in any case.
    for identifier in (EMAIL, "JANE@example.com"):
        response = await login(client, project.api_key, identifier, PASSWORD)
        assert_code(response, 42901)
        assert int(response.headers["Retry-After"]) > 0
    assert await state(client, project, jane, db) == before
    # Changing credentials with a live token is a different throttle and still works.
    assert_ok(await change(client, jane.token, {"pwd": NEW_PASSWORD}))


@pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_SIGNIN_MAX_FAILURES": "3", "AMEND_THROTTLE_WINDOW_SECONDS": "2"}],
    indirect=True,
)
async def test_login_throttle_ends_with_the_window(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    for _ in range(3):
        assert_code(await login(client, project.api_key, EMAIL, "Wr0ngGuess1"), 40105)
    response = await login(client, project.api_key, EMAIL, PASSWORD)
    assert_code(response, 42901)
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 2
    await asyncio.sleep(retry_after + 0.1)
    assert await logs_in(client, project.api_key, EMAIL, PASSWORD)


@pytest.mark.parametrize(
    "settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1"}], indirect=True
)
async def test_credential_changes_are_throttled_per_user_with_42901(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    assert_ok(await change(client, jane.token, {"pwd": NEW_PASSWORD}))
    fresh = await login_token(client, project.api_key, EMAIL, NEW_PASSWORD)
    rows_before = sql(db, "SELECT email, password_hash, version FROM users")
    response = await change(client, fresh, {"pwd": "An0therOne9"})
    assert_code(response, 42901)
    assert int(response.headers["Retry-After"]) > 0
    assert sql(db, "SELECT email, password_hash, version FROM users") == rows_before
    assert await graphql_refuses(client, fresh) is None  # the session survives


# --------------------------------------------------------------------------------------------
# The login extension
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    [
        pytest.param("query_key", id="key_in_query"),
        pytest.param("header_key", id="key_in_x_api_key"),
    ],
)
async def test_login_returns_a_token_that_works_with_x_access_token(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, how: str
) -> None:
    if how == "query_key":
        response = await login(client, project.api_key, EMAIL, PASSWORD)
    else:
        response = await login(
            client, None, EMAIL, PASSWORD, headers={"X-API-Key": project.api_key}
        )
    body = envelope(response)
    assert response.status_code == 200
    assert body["code"] == 0
    assert body["message"] == ""
    assert set(body["result"]) == {"token"}
    token = body["result"]["token"]
    assert token != jane.token
    # The token is a session of its own, usable with X-Access-Token on every route.
    me = await gql(client, ME, headers={"X-Access-Token": token})
    assert me["data"]["me"]["uniqueId"] == jane.unique_id
    profile = await client.get("/me", headers={"X-Access-Token": token})
    assert profile.status_code == 200
    assert profile.json()["data"]["id"] == f"user_{jane.unique_id}"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience=project.id)
    assert claims["sub"] == jane.unique_id
    assert claims["sid"].startswith("signin_")
    assert_ok(await change(client, token, {"pwd": NEW_PASSWORD}))


@pytest.mark.parametrize(
    "identifier",
    [
        pytest.param(EMAIL, id="email"),
        pytest.param("JANE@EXAMPLE.COM", id="email_any_case"),
        pytest.param(" jane@example.com ", id="email_with_spaces"),
    ],
)
async def test_login_by_email_is_case_insensitive(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, identifier: str
) -> None:
    token = await login_token(client, project.api_key, identifier, PASSWORD)
    assert (await read_me(client, token))["uniqueId"] == jane.unique_id


async def test_login_with_endpoint_param_uses_that_pool(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, services: Services
) -> None:
    await projects.create_endpoint(services, project=project.id, name="staff")
    staff_password = "Staff9pass"
    body = await gql(
        client,
        SIGN_UP,
        {
            "input": {
                "endpoint": "staff",
                "username": "jane",
                "password": staff_password,
                "email": EMAIL,
            }
        },
        headers={"X-API-Key": project.api_key},
    )
    staff_id = body["data"]["signUp"]["user"]["uniqueId"]
    assert staff_id != jane.unique_id
    response = await login(
        client, project.api_key, EMAIL, staff_password, params={"endpoint": "staff"}
    )
    token = envelope(response)["result"]["token"]
    me = await read_me(client, token)
    assert (me["uniqueId"], me["endpoint"]) == (staff_id, "staff")
    # Pools are separate: each password works only in its own endpoint.
    assert_code(
        await login(client, project.api_key, EMAIL, PASSWORD, params={"endpoint": "staff"}), 40105
    )
    assert_code(await login(client, project.api_key, EMAIL, staff_password), 40105)
    users_token = await login_token(client, project.api_key, EMAIL, PASSWORD)
    assert (await read_me(client, users_token))["endpoint"] == "users"
    # The staff user's credentials change through the same route.
    assert_ok(await change(client, token, {"pwd": NEW_PASSWORD}))
    relogin = await login(
        client, project.api_key, EMAIL, NEW_PASSWORD, params={"endpoint": "staff"}
    )
    assert envelope(relogin)["code"] == 0
    assert await logs_in(client, project.api_key, EMAIL, PASSWORD)


@pytest.mark.parametrize(
    "endpoint",
    [
        pytest.param("nope", id="unknown_endpoint"),
        pytest.param("Bad Name!", id="invalid_endpoint_name"),
    ],
)
async def test_login_with_unknown_endpoint_is_40001(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, endpoint: str
) -> None:
    response = await login(client, project.api_key, EMAIL, PASSWORD, params={"endpoint": endpoint})
    assert_code(response, 40001)


@pytest.mark.parametrize(
    ("eml", "pwd"),
    [
        pytest.param(EMAIL, "Wr0ngGuess1", id="wrong_password"),
        pytest.param("nobody@example.com", PASSWORD, id="unknown_email"),
        pytest.param("nobody", PASSWORD, id="unknown_identifier"),
        pytest.param(EMAIL, PASSWORD.upper(), id="password_is_case_sensitive"),
    ],
)
async def test_wrong_email_or_password_is_40105(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, eml: str, pwd: str
) -> None:
    response = await login(client, project.api_key, eml, pwd)
    body = assert_code(response, 40105)
    assert "token" not in response.text
    assert not response.headers.get_list("set-cookie")
    # The same answer for an unknown email and a wrong password (no account probing).
    other = await login(client, project.api_key, "someone@example.com", "Wr0ngGuess1")
    assert envelope(other)["message"] == body["message"]


@pytest.mark.parametrize(
    "request_kwargs",
    [
        pytest.param({"json": {"eml": EMAIL}}, id="missing_password"),
        pytest.param({"json": {"pwd": PASSWORD}}, id="missing_email"),
        pytest.param({"json": {"eml": EMAIL, "pwd": ""}}, id="empty_password"),
        pytest.param({"json": {"eml": EMAIL, "pwd": 123456}}, id="number_password"),
        pytest.param({"json": {"eml": EMAIL, "pwd": PASSWORD, "x": 1}}, id="unknown_member"),
        pytest.param({"json": [EMAIL, PASSWORD]}, id="not_an_object"),
        pytest.param({"content": b"{nope", "headers": JSON_TYPE}, id="non_json"),
        pytest.param({"content": b"", "headers": JSON_TYPE}, id="empty_body"),
        pytest.param({"data": {"eml": EMAIL, "pwd": PASSWORD}}, id="form_body"),
    ],
)
async def test_login_with_invalid_body_is_40001(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    request_kwargs: dict[str, Any],
) -> None:
    response = await client.post(LOGIN, params={"key": project.api_key}, **request_kwargs)
    assert_code(response, 40001)


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        pytest.param({}, {}, id="no_api_key"),
        pytest.param({"key": "not-a-key"}, {}, id="wrong_api_key_in_query"),
        pytest.param({}, {"X-API-Key": "not-a-key"}, id="wrong_api_key_header"),
    ],
)
async def test_login_without_a_valid_api_key_is_40302(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    response = await client.post(
        LOGIN, params=params, json={"eml": EMAIL, "pwd": PASSWORD}, headers=headers
    )
    assert_code(response, 40302)
    assert "token" not in response.text


async def test_login_with_the_master_key_only_is_40302(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # Sign-in needs the API key (SPEC §6/§7.2); a master key does not stand in for it.
    response = await client.post(
        LOGIN, json={"eml": EMAIL, "pwd": PASSWORD}, headers={"X-Master-Key": project.master_key}
    )
    assert_code(response, 40302)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Origin": EVIL_ORIGIN}, id="origin_not_listed"),
        pytest.param({}, id="no_origin"),
    ],
)
async def test_login_from_a_refused_origin_is_40302(
    client: httpx.AsyncClient,
    guarded: ProjectKeys,
    guarded_jane: Account,
    headers: dict[str, str],
) -> None:
    response = await login(client, guarded.api_key, EMAIL, PASSWORD, headers=headers)
    assert_code(response, 40302)
    ok = await login(client, guarded.api_key, EMAIL, PASSWORD, headers={"Origin": APP_ORIGIN})
    assert envelope(ok)["code"] == 0


async def test_login_is_post_only(client: httpx.AsyncClient, project: ProjectKeys) -> None:
    response = await client.get(LOGIN, params={"key": project.api_key})
    assert response.status_code == 405
