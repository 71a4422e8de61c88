"""§7.3 — the profile API: `GET /me` and `PATCH /me` (SPEC §4, §5, §7.3, §8; seed 002).

The success body is the seed's envelope `{status, message, data, session, errors}` with the
twelve `data` keys; errors use the same envelope with `data` and `session` null and
`errors: [{code, message, field}]`. Every refused change is followed by a read-back through
GraphQL `me` proving that nothing was written.
"""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

from api.services import projects
from api.services.container import Services
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import (
    ME,
    SIGN_OUT,
    SIGN_UP,
    UPDATE_USER,
    Account,
    gql,
    read_me,
    read_record,
    sign_in,
    sign_up,
    sql,
    top_error,
)

EMAIL = "jane@example.com"
APP_ORIGIN = "https://app.example.com"
EVIL_ORIGIN = "https://evil.example.com"

DATA_KEYS = {
    "id",
    "first_name",
    "last_name",
    "username",
    "email",
    "phone_number",
    "image_url",
    "two_factor_enabled",
    "email_verified",
    "phone_verified",
    "created_at",
    "updated_at",
}
SESSION_KEYS = {"signin_attempts", "signins", "signup_attempts", "active_signin"}
SIGNIN_KEYS = {"id", "user_id", "created_at"}
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
USER_ID = re.compile(r"^user_[0-9a-f]{32}$")
SIGNIN_ID = re.compile(r"^signin_[0-9a-f]{32}$")


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(
        client, project.api_key, "jane", email=EMAIL, firstName="Jane", lastName="Doe"
    )


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"access_token={token}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def x_access(token: str) -> dict[str, str]:
    return {"X-Access-Token": token}


AUTH_STYLES = [
    pytest.param(cookie, id="cookie"),
    pytest.param(bearer, id="bearer"),
    pytest.param(x_access, id="x_access_token"),
]


# --------------------------------------------------------------------------------------------
# Envelope checks
# --------------------------------------------------------------------------------------------


def _check_signin(item: Any, user_id: str) -> None:
    assert isinstance(item, dict)
    assert set(item) == SIGNIN_KEYS, item
    assert SIGNIN_ID.fullmatch(item["id"]), item
    assert item["user_id"] == user_id
    assert TIMESTAMP.fullmatch(item["created_at"]), item


def ok(response: httpx.Response) -> dict[str, Any]:
    """The seed's success envelope, checked key by key; returns the body."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message", "data", "session", "errors"}, body
    assert body["status"] == 200
    assert body["message"] == ""
    assert body["errors"] == []
    data = body["data"]
    assert set(data) == DATA_KEYS, data
    assert USER_ID.fullmatch(data["id"]), data
    for key in ("created_at", "updated_at"):
        assert TIMESTAMP.fullmatch(data[key]), data
    assert data["created_at"] <= data["updated_at"]
    for key in ("two_factor_enabled", "email_verified", "phone_verified"):
        assert isinstance(data[key], bool), data
    assert isinstance(data["username"], str) and data["username"]
    for key in ("first_name", "last_name", "email", "phone_number", "image_url"):
        assert data[key] is None or isinstance(data[key], str), data
    session = body["session"]
    assert set(session) == SESSION_KEYS, session
    for key in ("signin_attempts", "signins", "signup_attempts"):
        assert isinstance(session[key], list), session
    for item in session["signins"]:
        _check_signin(item, data["id"])
    assert session["active_signin"] is not None
    _check_signin(session["active_signin"], data["id"])
    assert session["active_signin"] in session["signins"]
    # A strong ETag of the record version on every success.
    assert re.fullmatch(r'"\d+"', response.headers["etag"]), response.headers
    assert isinstance(body, dict)
    return body


def refused(
    response: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """The error envelope: HTTP status = `status`, data and session null, errors listed."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "message", "data", "session", "errors"}, body
    assert body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert body["data"] is None
    assert body["session"] is None
    errors = body["errors"]
    assert errors, body
    for error in errors:
        assert set(error) == {"code", "message", "field"}, error
        assert isinstance(error["message"], str) and error["message"]
        assert error["field"] is None or isinstance(error["field"], str)
    assert errors[0]["code"] == code, body
    if field is not None:
        assert errors[0]["field"] == field, body
    assert "etag" not in response.headers
    assert isinstance(body, dict)
    return body


async def patch(
    client: httpx.AsyncClient, headers: dict[str, str], body: Any, **extra: str
) -> httpx.Response:
    return await client.patch("/me", json=body, headers={**headers, **extra})


# --------------------------------------------------------------------------------------------
# GET /me
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTH_STYLES)
async def test_get_me_answers_the_seed_envelope(
    client: httpx.AsyncClient, jane: Account, auth: Any
) -> None:
    response = await client.get("/me", headers=auth(jane.token))
    body = ok(response)
    assert response.headers["etag"] == '"1"'
    gql_me = await read_me(client, jane.token)
    assert body["data"] == {
        "id": f"user_{jane.unique_id}",
        "first_name": "Jane",
        "last_name": "Doe",
        "username": "jane",
        "email": EMAIL,
        "phone_number": None,
        "image_url": None,
        "two_factor_enabled": False,
        "email_verified": False,
        "phone_verified": False,
        # GraphQL has milliseconds; this API whole seconds.
        "created_at": gql_me["createdAt"][:19] + "Z",
        "updated_at": gql_me["updatedAt"][:19] + "Z",
    }
    session = body["session"]
    current = {
        "id": jane.session_id,
        "user_id": f"user_{jane.unique_id}",
        "created_at": session["active_signin"]["created_at"],
    }
    assert session["active_signin"] == current
    assert session["signins"] == [current]


async def test_get_me_lists_every_active_signin_and_the_current_one(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    second = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"]
    failed = await sign_in(client, project.api_key, "jane", "Wr0ngGuess1")
    assert failed["data"]["signIn"]["errors"]
    body = ok(await client.get("/me", headers=bearer(second)))
    session = body["session"]
    assert len(session["signins"]) == 2
    assert jane.session_id in {s["id"] for s in session["signins"]}
    assert session["active_signin"]["id"] != jane.session_id
    assert len(session["signin_attempts"]) == 2  # one success, one failure
    # The first token still sees itself as the active sign-in.
    first = ok(await client.get("/me", headers=bearer(jane.token)))
    assert first["session"]["active_signin"]["id"] == jane.session_id


async def test_get_me_reflects_the_stored_flags(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    sql(
        db,
        "UPDATE users SET two_factor_enabled = ?, email_verified = ?, phone_verified = ?, "
        "phone_number = '+14155552671', image_url = 'https://cdn.example.com/a.png'",
        (True, True, True),
    )
    data = ok(await client.get("/me", headers=cookie(jane.token)))["data"]
    assert data["two_factor_enabled"] is True
    assert data["email_verified"] is True
    assert data["phone_verified"] is True
    assert data["phone_number"] == "+14155552671"
    assert data["image_url"] == "https://cdn.example.com/a.png"


# --------------------------------------------------------------------------------------------
# PATCH /me — success
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", AUTH_STYLES)
async def test_patch_me_updates_names_like_the_seed_example(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, auth: Any
) -> None:
    response = await patch(client, auth(jane.token), {"first_name": "Jane", "last_name": "Smith"})
    body = ok(response)
    assert response.headers["etag"] == '"2"'
    data = body["data"]
    assert (data["first_name"], data["last_name"]) == ("Jane", "Smith")
    assert (data["username"], data["email"]) == ("jane", EMAIL)
    assert body["session"]["active_signin"]["id"] == jane.session_id
    me = await read_me(client, jane.token)
    assert (me["firstName"], me["lastName"], me["version"]) == ("Jane", "Smith", 2)
    record = await read_record(client, project.master_key, jane.unique_id)
    assert record["version"] == 2
    # The session survives a profile change (not a credential change).
    assert not response.headers.get_list("set-cookie")


async def test_patch_me_sets_every_allowed_field(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    change = {
        "first_name": "Janet",
        "last_name": "Smith",
        "username": "janesmith2024",
        "phone_number": "+1234567890",
        "image_url": "https://cdn.example.com/avatars/janesmith.jpg",
    }
    data = ok(await patch(client, bearer(jane.token), change))["data"]
    assert {k: data[k] for k in change} == change
    assert data["phone_verified"] is False
    me = await read_me(client, jane.token)
    assert me["username"] == "janesmith2024"
    assert me["phoneNumber"] == "+1234567890"
    assert me["imageUrl"] == change["image_url"]
    # The new username signs in; the record document follows.
    signed = await sign_in(client, project.api_key, "janesmith2024")
    assert signed["data"]["signIn"]["errors"] == []
    record = await read_record(client, project.master_key, jane.unique_id)
    assert record["data"]["username"] == "janesmith2024"


async def test_absent_is_unchanged_and_null_is_cleared(
    client: httpx.AsyncClient, jane: Account
) -> None:
    full = {
        "first_name": "Jane",
        "last_name": "Smith",
        "phone_number": "+14155552671",
        "image_url": "https://cdn.example.com/a.png",
    }
    ok(await patch(client, bearer(jane.token), full))
    data = ok(await patch(client, bearer(jane.token), {"first_name": None}))["data"]
    assert data["first_name"] is None
    assert (data["last_name"], data["phone_number"], data["image_url"]) == (
        "Smith",
        "+14155552671",
        "https://cdn.example.com/a.png",
    )
    data = ok(
        await patch(
            client,
            bearer(jane.token),
            {"last_name": None, "phone_number": None, "image_url": None},
        )
    )["data"]
    assert (data["last_name"], data["phone_number"], data["image_url"]) == (None, None, None)
    assert (data["username"], data["email"]) == ("jane", EMAIL)
    me = await read_me(client, jane.token)
    assert (me["firstName"], me["lastName"], me["phoneNumber"], me["imageUrl"]) == (None,) * 4


@pytest.mark.parametrize(
    ("change", "verified_after"),
    [
        pytest.param({"phone_number": "+14155550000"}, False, id="new_phone_resets_verified"),
        pytest.param({"phone_number": None}, False, id="cleared_phone_resets_verified"),
        pytest.param({"phone_number": "+14155552671"}, True, id="same_phone_keeps_verified"),
        pytest.param({"first_name": "Janet"}, True, id="other_field_keeps_verified"),
    ],
)
async def test_phone_number_change_resets_phone_verified(
    client: httpx.AsyncClient,
    jane: Account,
    db: TestDB,
    change: dict[str, Any],
    verified_after: bool,
) -> None:
    sql(
        db,
        "UPDATE users SET phone_number = '+14155552671', phone_verified = ? WHERE unique_id = ?",
        (True, jane.unique_id),
    )
    data = ok(await patch(client, cookie(jane.token), change))["data"]
    assert data["phone_verified"] is verified_after
    assert (await read_me(client, jane.token))["phoneVerified"] is verified_after


async def test_patch_that_changes_nothing_keeps_the_version(
    client: httpx.AsyncClient, jane: Account
) -> None:
    before = await read_me(client, jane.token)
    response = await patch(client, bearer(jane.token), {"first_name": "Jane", "last_name": "Doe"})
    ok(response)
    assert response.headers["etag"] == '"1"'
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize(
    ("username", "stored"),
    [
        pytest.param("Jane", "Jane", id="own_username_in_another_case"),
        pytest.param("  jane.doe  ", "jane.doe", id="surrounding_spaces_trimmed"),
        pytest.param("Jänë", "Jänë", id="unicode_username"),
    ],
)
async def test_username_change(
    client: httpx.AsyncClient, jane: Account, username: str, stored: str
) -> None:
    data = ok(await patch(client, bearer(jane.token), {"username": username}))["data"]
    assert data["username"] == stored
    assert (await read_me(client, jane.token))["username"] == stored


async def test_patch_is_audited_as_update_me(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    ok(await patch(client, bearer(jane.token), {"first_name": "Janet", "phone_number": None}))
    rows = sql(db, "SELECT action, actor, fields FROM audit_events ORDER BY id")
    action, actor, fields = rows[-1]
    assert (action, actor, json_column(fields)) == ("update_me", "user", ["first_name"])


# --------------------------------------------------------------------------------------------
# PATCH /me — refused changes write nothing
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"email": "x@example.com"}, ["email"], id="email"),
        pytest.param({"email_verified": True}, ["email_verified"], id="email_verified"),
        pytest.param({"phone_verified": True}, ["phone_verified"], id="phone_verified"),
        pytest.param({"two_factor_enabled": True}, ["two_factor_enabled"], id="two_factor_enabled"),
        pytest.param({"id": "user_" + "0" * 32}, ["id"], id="id"),
        pytest.param({"data": {"k": 1}}, ["data"], id="data"),
        pytest.param({"created_at": "2024-01-01T00:00:00Z"}, ["created_at"], id="created_at"),
        pytest.param({"updated_at": "2024-01-01T00:00:00Z"}, ["updated_at"], id="updated_at"),
        pytest.param({"password": "N3wSecret42x"}, ["password"], id="password"),
        pytest.param({"version": 9}, ["version"], id="version"),
        pytest.param({"firstName": "Janet"}, ["firstName"], id="graphql_camel_case_name"),
        pytest.param({"session": {}}, ["session"], id="session"),
        pytest.param(
            {"first_name": "Janet", "email": "x@example.com"},
            ["email"],
            id="allowed_field_with_forbidden_one",
        ),
        pytest.param(
            {"email": "x@example.com", "data": {}, "first_name": "Janet"},
            ["data", "email"],
            id="every_forbidden_field_is_listed",
        ),
    ],
)
async def test_field_outside_the_allowed_set_is_field_not_allowed(
    client: httpx.AsyncClient, jane: Account, body: dict[str, Any], fields: list[str]
) -> None:
    before = await read_me(client, jane.token)
    response = await patch(client, cookie(jane.token), body)
    envelope = refused(response, 400, "FIELD_NOT_ALLOWED", fields[0])
    assert [(e["code"], e["field"]) for e in envelope["errors"]] == [
        ("FIELD_NOT_ALLOWED", f) for f in fields
    ]
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"phone_number": "12345"}, "phone_number", id="phone_without_plus"),
        pytest.param({"phone_number": "+0123456"}, "phone_number", id="phone_leading_zero"),
        pytest.param({"phone_number": "+1 415 555 2671"}, "phone_number", id="phone_spaces"),
        pytest.param({"phone_number": "+1234567890123456"}, "phone_number", id="phone_too_long"),
        pytest.param({"phone_number": "+١٢٣٤٥٦٧"}, "phone_number", id="phone_non_ascii_digits"),
        pytest.param({"phone_number": 14155552671}, "phone_number", id="phone_number_type"),
        pytest.param({"image_url": "javascript:alert(1)"}, "image_url", id="javascript_url"),
        pytest.param({"image_url": "data:image/png;base64,AAAA"}, "image_url", id="data_url"),
        pytest.param({"image_url": "ftp://cdn.example.com/a.png"}, "image_url", id="ftp_url"),
        pytest.param({"image_url": "//cdn.example.com/a.png"}, "image_url", id="relative_url"),
        pytest.param({"image_url": "https://"}, "image_url", id="url_without_host"),
        pytest.param({"image_url": "https://a.example/ b.png"}, "image_url", id="url_with_space"),
        pytest.param({"first_name": 42}, "first_name", id="number_first_name"),
        pytest.param({"last_name": ["Smith"]}, "last_name", id="array_last_name"),
        pytest.param({"first_name": "a\x00b"}, "first_name", id="control_char_name"),
        pytest.param({"first_name": "x" * 101}, "first_name", id="too_long_name"),
        pytest.param({"username": None}, "username", id="username_cannot_be_cleared"),
        pytest.param({"username": 7}, "username", id="number_username"),
        pytest.param({"username": "x" * 151}, "username", id="too_long_username"),
        # SPEC §8: REQUIRED_FIELD_MISSING cannot occur on §7.3; a blank username is refused
        # like a cleared one, as an invalid field.
        pytest.param({"username": ""}, "username", id="empty_username"),
        pytest.param({"username": "   "}, "username", id="blank_username"),
        pytest.param(
            {"first_name": "Janet", "image_url": "javascript:alert(1)"},
            "image_url",
            id="invalid_field_blocks_the_valid_one",
        ),
    ],
)
async def test_invalid_value_is_invalid_field(
    client: httpx.AsyncClient, jane: Account, body: dict[str, Any], field: str
) -> None:
    before = await read_me(client, jane.token)
    response = await patch(client, bearer(jane.token), body)
    refused(response, 400, "INVALID_FIELD", field)
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize(
    "username",
    [
        pytest.param("bob", id="same_case"),
        pytest.param("BOB", id="other_case"),
        pytest.param(" Bob ", id="surrounding_spaces"),
    ],
)
async def test_username_of_another_user_is_409_username_taken(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, username: str
) -> None:
    await sign_up(client, project.api_key, "bob")
    before = await read_me(client, jane.token)
    response = await patch(
        client, cookie(jane.token), {"username": username, "first_name": "Janet"}
    )
    body = refused(response, 409, "USERNAME_TAKEN", "username")
    assert body["errors"] == [
        {"code": "USERNAME_TAKEN", "message": body["errors"][0]["message"], "field": "username"}
    ]
    assert await read_me(client, jane.token) == before


async def test_username_of_a_user_in_another_endpoint_is_free(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, services: Services
) -> None:
    await projects.create_endpoint(services, project=project.id, name="staff")
    body = await gql(
        client,
        SIGN_UP,
        {"input": {"endpoint": "staff", "username": "bob", "password": PASSWORD}},
        headers={"X-API-Key": project.api_key},
    )
    assert body["data"]["signUp"]["errors"] == []
    assert ok(await patch(client, bearer(jane.token), {"username": "bob"}))["data"]["username"] == (
        "bob"
    )


async def test_empty_object_is_empty_update(client: httpx.AsyncClient, jane: Account) -> None:
    before = await read_me(client, jane.token)
    refused(await patch(client, bearer(jane.token), {}), 400, "EMPTY_UPDATE")
    assert await read_me(client, jane.token) == before


JSON_TYPE = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("request_kwargs", "code"),
    [
        pytest.param(
            {"content": b'{"first_name": "X"}', "headers": {"Content-Type": "text/plain"}},
            "UNSUPPORTED_CONTENT_TYPE",
            id="text_plain",
        ),
        pytest.param({"data": {"first_name": "X"}}, "UNSUPPORTED_CONTENT_TYPE", id="form"),
        pytest.param(
            {"content": b'{"first_name": "X"}'}, "UNSUPPORTED_CONTENT_TYPE", id="no_content_type"
        ),
        pytest.param({"content": b"", "headers": JSON_TYPE}, "EMPTY_BODY", id="empty_body"),
        pytest.param({"content": b" \n", "headers": JSON_TYPE}, "EMPTY_BODY", id="blank_body"),
        pytest.param({"content": b"{nope", "headers": JSON_TYPE}, "INVALID_FIELD", id="non_json"),
        pytest.param({"json": ["first_name"]}, "INVALID_FIELD", id="array_body"),
        pytest.param({"content": b"null", "headers": JSON_TYPE}, "INVALID_FIELD", id="null_body"),
    ],
)
async def test_bad_body_is_400(
    client: httpx.AsyncClient, jane: Account, request_kwargs: dict[str, Any], code: str
) -> None:
    before = await read_me(client, jane.token)
    kwargs = dict(request_kwargs)
    headers = {**bearer(jane.token), **kwargs.pop("headers", {})}
    response = await client.patch("/me", headers=headers, **kwargs)
    refused(response, 400, code)
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
async def test_json_content_type_with_parameters_or_case_is_accepted(
    client: httpx.AsyncClient, jane: Account, content_type: str
) -> None:
    response = await client.patch(
        "/me",
        content='{"first_name": "Zoë"}'.encode(),
        headers={**bearer(jane.token), "Content-Type": content_type},
    )
    assert ok(response)["data"]["first_name"] == "Zoë"


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_NAME": "amend_sid"}], indirect=True)
async def test_configured_cookie_name_is_the_session_cookie(
    client: httpx.AsyncClient, jane: Account
) -> None:
    refused(await client.get("/me", headers=cookie(jane.token)), 401, "MISSING_TOKEN")
    response = await client.get("/me", headers={"Cookie": f"amend_sid={jane.token}"})
    assert ok(response)["data"]["username"] == "jane"


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_SECURE": "false"}], indirect=True)
async def test_cookie_set_by_sign_in_authenticates_get_and_patch(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # A browser-like client: only the cookie from signIn, no header.
    client.cookies.clear()
    signed = await sign_in(client, project.api_key, "jane")
    session_id = signed["data"]["signIn"]["session"]["id"]
    body = ok(await client.get("/me"))
    assert body["session"]["active_signin"]["id"] == session_id
    body = ok(await client.patch("/me", json={"last_name": "Smith"}))
    assert body["data"]["last_name"] == "Smith"
    assert (await read_me(client, jane.token))["lastName"] == "Smith"


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, jane: Account) -> None:
    before = await read_me(client, jane.token)
    response = await patch(client, bearer(jane.token), {"first_name": "x" * 1100})
    refused(response, 413, "PAYLOAD_TOO_LARGE")
    assert await read_me(client, jane.token) == before


# --------------------------------------------------------------------------------------------
# 401 / 403
# --------------------------------------------------------------------------------------------


def _expired(services: Services, project: ProjectKeys, account: Account) -> str:
    now = int(time.time())
    return services.tokens.issue(
        project_id=project.id,
        unique_id=account.unique_id,
        session_hex=account.session_id.removeprefix("signin_"),
        iat=now - 7200,
        exp=now - 3600,
    )


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize(
    ("make_headers", "code"),
    [
        pytest.param(lambda a, s, p: {}, "MISSING_TOKEN", id="no_token"),
        pytest.param(lambda a, s, p: {"Cookie": "other=1"}, "MISSING_TOKEN", id="other_cookie"),
        pytest.param(lambda a, s, p: bearer("garbage"), "INVALID_TOKEN", id="garbage_bearer"),
        pytest.param(lambda a, s, p: cookie("garbage"), "INVALID_TOKEN", id="garbage_cookie"),
        pytest.param(
            lambda a, s, p: {**bearer("garbage"), **cookie(a.token)},
            "INVALID_TOKEN",
            id="invalid_bearer_never_falls_back_to_the_cookie",
        ),
        pytest.param(
            lambda a, s, p: bearer(a.token[:-3] + "abc"), "INVALID_TOKEN", id="tampered_token"
        ),
        pytest.param(
            lambda a, s, p: bearer(_expired(s, p, a)), "TOKEN_EXPIRED", id="expired_token"
        ),
        pytest.param(
            lambda a, s, p: cookie(_expired(s, p, a)), "TOKEN_EXPIRED", id="expired_cookie"
        ),
    ],
)
async def test_unauthenticated_is_401(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    jane: Account,
    services: Services,
    method: str,
    make_headers: Any,
    code: str,
) -> None:
    before = await read_me(client, jane.token)
    response = await client.request(
        method, "/me", json={"first_name": "Mallory"}, headers=make_headers(jane, services, project)
    )
    refused(response, 401, code)
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize("auth", AUTH_STYLES)
async def test_revoked_session_is_401_session_revoked(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, method: str, auth: Any
) -> None:
    assert (await gql(client, SIGN_OUT, headers=jane.auth))["data"] == {"signOut": True}
    response = await client.request(
        method, "/me", json={"first_name": "Mallory"}, headers=auth(jane.token)
    )
    refused(response, 401, "SESSION_REVOKED")
    token = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]["token"]
    me = await read_me(client, token)
    assert (me["firstName"], me["version"]) == ("Jane", 1)


async def test_expired_session_is_401_token_expired(
    client: httpx.AsyncClient, jane: Account, db: TestDB
) -> None:
    sql(db, "UPDATE sessions SET expires_at = ?", ((int(time.time()) - 60) * 1000,))
    refused(await client.get("/me", headers=bearer(jane.token)), 401, "TOKEN_EXPIRED")


@pytest.fixture
async def guarded(make_project_fn: Any) -> ProjectKeys:
    return await make_project_fn("guarded", origins=[APP_ORIGIN], allow_no_origin=False)


@pytest.fixture
async def guarded_jane(client: httpx.AsyncClient, guarded: ProjectKeys) -> Account:
    body = await gql(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": PASSWORD, "firstName": "Jane"}},
        headers={"X-API-Key": guarded.api_key, "Origin": APP_ORIGIN},
    )
    payload = body["data"]["signUp"]
    assert payload["errors"] == [], payload
    return Account(
        "jane", PASSWORD, payload["token"], payload["user"]["uniqueId"], payload["session"]["id"]
    )


@pytest.mark.parametrize("method", ["GET", "PATCH"])
@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"Origin": EVIL_ORIGIN}, "ORIGIN_NOT_ALLOWED", id="origin_not_listed"),
        pytest.param({"Origin": "null"}, "ORIGIN_NOT_ALLOWED", id="null_origin"),
        pytest.param({}, "ORIGIN_REQUIRED", id="no_origin"),
    ],
)
async def test_refused_origin_is_403(
    client: httpx.AsyncClient,
    guarded: ProjectKeys,
    guarded_jane: Account,
    method: str,
    headers: dict[str, str],
    reason: str,
) -> None:
    response = await client.request(
        method,
        "/me",
        json={"first_name": "Mallory"},
        headers={**cookie(guarded_jane.token), **headers},
    )
    refused(response, 403, reason)
    record = await read_record(client, guarded.master_key, guarded_jane.unique_id)
    assert record["version"] == 1
    # From the listed origin the same request goes through.
    allowed = await client.request(
        method,
        "/me",
        json={"first_name": "Janet"},
        headers={**cookie(guarded_jane.token), "Origin": APP_ORIGIN},
    )
    assert ok(allowed)["data"]["first_name"] == ("Janet" if method == "PATCH" else "Jane")


# --------------------------------------------------------------------------------------------
# ETag / If-Match
# --------------------------------------------------------------------------------------------


async def test_every_success_carries_the_version_etag(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    assert (await client.get("/me", headers=bearer(jane.token))).headers["etag"] == '"1"'
    for version, name in enumerate(["A", "B", "C"], start=2):
        response = await patch(client, bearer(jane.token), {"first_name": name})
        ok(response)
        assert response.headers["etag"] == f'"{version}"'
        record = await read_record(client, project.master_key, jane.unique_id)
        assert response.headers["etag"] == f'"{record["version"]}"'
    assert (await client.get("/me", headers=cookie(jane.token))).headers["etag"] == '"4"'


@pytest.mark.parametrize(
    "if_match",
    [
        pytest.param('"1"', id="stale_version"),
        pytest.param('"3"', id="future_version"),
        pytest.param('W/"2"', id="weak_etag_never_matches"),
        pytest.param("2", id="unquoted_version"),
        pytest.param('"abc"', id="not_a_version"),
    ],
)
async def test_if_match_that_does_not_match_is_412_and_writes_nothing(
    client: httpx.AsyncClient, jane: Account, if_match: str
) -> None:
    ok(await patch(client, bearer(jane.token), {"first_name": "Janet"}))  # version 2
    before = await read_me(client, jane.token)
    response = await patch(
        client, bearer(jane.token), {"first_name": "Mallory"}, **{"If-Match": if_match}
    )
    refused(response, 412, "VERSION_CONFLICT")
    assert await read_me(client, jane.token) == before


@pytest.mark.parametrize("if_match", ['"2"', ' "2" ', "*"], ids=["current", "spaces", "star"])
async def test_if_match_that_matches_is_200(
    client: httpx.AsyncClient, jane: Account, if_match: str
) -> None:
    first = await patch(client, bearer(jane.token), {"first_name": "Janet"})
    assert first.headers["etag"] == '"2"'
    response = await patch(
        client, bearer(jane.token), {"last_name": "Smith"}, **{"If-Match": if_match}
    )
    body = ok(response)
    assert response.headers["etag"] == '"3"'
    assert (body["data"]["first_name"], body["data"]["last_name"]) == ("Janet", "Smith")


async def test_etag_from_get_guards_the_next_patch(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    etag = (await client.get("/me", headers=cookie(jane.token))).headers["etag"]
    # Someone else (the master key, through GraphQL) changes the record in between.
    body = await gql(
        client,
        UPDATE_USER,
        {"endpoint": "users", "uniqueId": jane.unique_id, "data": {"k": 1}, "strategy": "MERGE"},
        headers={"X-Master-Key": project.master_key},
    )
    assert body["data"]["updateUser"]["errors"] == []
    response = await patch(
        client, cookie(jane.token), {"first_name": "Janet"}, **{"If-Match": etag}
    )
    refused(response, 412, "VERSION_CONFLICT")
    fresh = (await client.get("/me", headers=cookie(jane.token))).headers["etag"]
    assert fresh == '"2"'
    ok(await patch(client, cookie(jane.token), {"first_name": "Janet"}, **{"If-Match": fresh}))


async def test_graphql_me_and_rest_me_agree(client: httpx.AsyncClient, jane: Account) -> None:
    ok(await patch(client, bearer(jane.token), {"phone_number": "+14155552671"}))
    rest = ok(await client.get("/me", headers=bearer(jane.token)))["data"]
    body = await gql(client, ME, headers=bearer(jane.token))
    me = body["data"]["me"]
    assert rest["id"] == me["id"]
    assert rest["phone_number"] == me["phoneNumber"]
    assert rest["updated_at"] == me["updatedAt"][:19] + "Z"
    assert top_error(await gql(client, ME)) == {
        "code": "UNAUTHENTICATED",
        "reason": "MISSING_TOKEN",
    }
