"""§7.1 — the record API `/1/ce/{endpoint}` over real HTTP (SPEC §3, §4, §5, §7.1, §8; seed 000).

Every answer is checked against the exact envelope:

- success: exactly `{uniqueId, data, createdAt, updatedAt}` (or the document alone with
  `dataOnly=true`) and a strong `ETag: "<version>"`;
- error: exactly `{status, error, message}`, `status` equal to the HTTP status.

Every refused write is followed by a read-back with the master key proving that nothing
changed (same ETag, same body), and by a check that the old credentials still work.
"""

from __future__ import annotations

import inspect
import json
import re
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest

from api.core import ids
from api.core.clock import now_ms
from api.core.errors import Reason
from api.rest.errors import CE_STATUS
from api.services.container import Services
from tests.conftest import PASSWORD, SECRET, ProjectKeys
from tests.db import TestDB
from tests.gql import SIGN_OUT, Account, age_sessions, cookie_cleared, gql, sign_up, sql

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"
NEW_PASSWORD = "N3wSecret42x"
INITIAL_DATA = {"colour": "blue", "tags": ["a", "b"], "nested": {"x": 1, "y": 2}}
INITIAL_DOC = {"username": "jane", **INITIAL_DATA}
VALID = {"username": "jane", "password": PASSWORD, "colour": "red"}
UNKNOWN_ID = "0" * 32
APP = "https://app.example.com"
EVIL = "https://evil.example.com"

HEX32 = re.compile(r"^[0-9a-f]{32}$")
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ETAG = re.compile(r'^"(\d+)"$')
NO_BODY: Any = object()


# --------------------------------------------------------------------------------------------
# Requests and envelope assertions
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One request to the record API. `body` is sent as JSON text, `raw` as given."""

    params: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = NO_BODY
    raw: bytes | None = None
    content_type: str | None = JSON_TYPE
    path: str = "/1/ce/users"


async def send(client: httpx.AsyncClient, method: str, req: Req) -> httpx.Response:
    # Only what the row says is sent: no cookie left in the jar by an earlier response.
    client.cookies.clear()
    headers = dict(req.headers)
    content: bytes | None = req.raw
    if content is None and req.body is not NO_BODY:
        content = json.dumps(req.body).encode()
    if content is not None and req.content_type is not None:
        headers["Content-Type"] = req.content_type
    response = await client.request(
        method, req.path, params=req.params, headers=headers, content=content
    )
    client.cookies.clear()
    return response


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"access_token={token}"}


def version_of(response: httpx.Response) -> int:
    match = ETAG.match(response.headers.get("etag", ""))
    assert match, f"no strong ETag of a version: {response.headers.get('etag')!r}"
    return int(match.group(1))


def assert_record(
    response: httpx.Response,
    *,
    status: int = 200,
    unique_id: str | None = None,
    data: dict[str, Any] | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """The exact success envelope; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON_TYPE)
    body = response.json()
    assert set(body) == {"uniqueId", "data", "createdAt", "updatedAt"}, body
    assert HEX32.match(body["uniqueId"]), body
    if unique_id is not None:
        assert body["uniqueId"] == unique_id
    assert isinstance(body["data"], dict)
    assert isinstance(body["data"].get("username"), str)
    assert "password" not in body["data"]
    if data is not None:
        assert body["data"] == data
    assert TIMESTAMP.match(body["createdAt"]), body
    assert TIMESTAMP.match(body["updatedAt"]), body
    assert body["createdAt"] <= body["updatedAt"]
    found = version_of(response)
    if version is not None:
        assert found == version
    return body  # type: ignore[no-any-return]


def assert_document(
    response: httpx.Response, data: dict[str, Any], *, version: int | None = None
) -> None:
    """`dataOnly=true`: the document alone, still with its ETag."""
    assert response.status_code == 200, response.text
    assert response.json() == data
    assert "password" not in response.json()
    found = version_of(response)
    if version is not None:
        assert found == version


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    """The exact error envelope of §7.1; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON_TYPE)
    body = response.json()
    assert set(body) == {"status", "error", "message"}, body
    assert body["status"] == status
    assert body["error"] == reason, body
    assert isinstance(body["message"], str)
    assert body["message"]
    # A refusal never hands out a session.
    assert "authorization" not in response.headers
    assert not any(
        h.startswith("access_token=") and not cookie_cleared(response)
        for h in response.headers.get_list("set-cookie")
    )
    return body  # type: ignore[no-any-return]


def set_cookie_of(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The session cookie a response sets: its value and its attributes (lower-case names)."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith("access_token")]
    first, *parts = [p.strip() for p in header.split(";")]
    value = first.partition("=")[2]
    attrs = {}
    for part in parts:
        key, _, attr = part.partition("=")
        attrs[key.lower()] = attr
    return value, attrs


def assert_signed_in(response: httpx.Response) -> str:
    """Cookie (HttpOnly; SameSite=Lax; Path=/; Secure) and `Authorization: Bearer …` carry the
    same new token; returns it."""
    value, attrs = set_cookie_of(response)
    assert "httponly" in attrs
    assert attrs.get("samesite", "").lower() == "lax"
    assert attrs.get("path") == "/"
    assert "secure" in attrs  # not dev mode
    assert attrs["max-age"] == "3600"  # AMEND_TOKEN_TTL_SECONDS default
    scheme, _, token = response.headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    assert token == value
    return token


# --------------------------------------------------------------------------------------------
# The world every test starts from
# --------------------------------------------------------------------------------------------


@dataclass
class World:
    client: httpx.AsyncClient
    services: Services
    db: TestDB
    project: ProjectKeys
    jane: Account  # owner of the record under test, with INITIAL_DATA
    bob: Account  # another user of the same endpoint
    other: ProjectKeys  # another project
    carol: Account  # a user of the other project

    def owner(self, **params: str) -> dict[str, str]:
        return {"key": self.project.api_key, "uniqueId": self.jane.unique_id, **params}

    def master(self, unique_id: str | None = None, **params: str) -> dict[str, str]:
        return {
            "key": self.project.api_key,
            "uniqueId": unique_id or self.jane.unique_id,
            "masterKey": self.project.master_key,
            **params,
        }

    def token(
        self,
        *,
        unique_id: str | None = None,
        session_id: str | None = None,
        project_id: str | None = None,
        exp: int | None = None,
    ) -> str:
        """A correctly signed token with chosen claims."""
        now = int(time.time())
        session_hex = ids.parse_session_id(session_id or self.jane.session_id)
        assert session_hex is not None
        return self.services.tokens.issue(
            project_id=project_id or self.project.id,
            unique_id=unique_id or self.jane.unique_id,
            session_hex=session_hex,
            iat=now - 7200 if exp is not None and exp < now else now,
            exp=exp if exp is not None else now + 3600,
        )

    def resigned(self, *, key: str | None = SECRET, algorithm: str = "HS256") -> str:
        """Jane's token with the same claims, signed with another key or algorithm."""
        claims = jwt.decode(self.jane.token, options={"verify_signature": False})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PyJWT warns about short keys for HS384/HS512
            return jwt.encode(claims, key, algorithm=algorithm)

    def session_hex(self, account: Account) -> str:
        hex_id = ids.parse_session_id(account.session_id)
        assert hex_id is not None
        return hex_id


@pytest.fixture
async def world(
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    project: ProjectKeys,
    make_project_fn: Any,
) -> World:
    jane = await sign_up(client, project.api_key, "jane", data=INITIAL_DATA)
    bob = await sign_up(client, project.api_key, "bob", data={"team": "red"})
    other = await make_project_fn("other")
    carol = await sign_up(client, other.api_key, "carol")
    client.cookies.clear()
    return World(client, services, db, project, jane, bob, other, carol)


Snapshot = dict[str, tuple[str, dict[str, Any]]]


async def snapshot(w: World) -> Snapshot:
    """Both records of the endpoint as the master key reads them: ETag and body."""
    out: Snapshot = {}
    for account in (w.jane, w.bob):
        response = await send(w.client, "GET", Req(w.master(account.unique_id)))
        body = assert_record(response, unique_id=account.unique_id)
        out[account.unique_id] = (response.headers["etag"], body)
    return out


async def assert_unchanged(w: World, before: Snapshot, *, tokens_alive: bool = True) -> None:
    """Nothing was written; the old password still signs in; optionally the tokens still work."""
    assert await snapshot(w) == before
    if tokens_alive:
        for account in (w.jane, w.bob):
            params = {"key": w.project.api_key, "uniqueId": account.unique_id}
            response = await send(w.client, "GET", Req(params, bearer(account.token)))
            assert_record(response, unique_id=account.unique_id)
    login = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            body={"username": "jane", "password": PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    assert_record(login, unique_id=w.jane.unique_id)


Build = Callable[[World], "Req | Awaitable[Req]"]


async def build(w: World, make: Build) -> Req:
    req = make(w)
    if inspect.isawaitable(req):
        req = await req
    assert isinstance(req, Req)
    return req


# --------------------------------------------------------------------------------------------
# The wire table of §8 for this route
# --------------------------------------------------------------------------------------------

# §8, column §7.1 (— = cannot occur there).
SPEC_CE_STATUS: dict[str, int | None] = {
    "MISSING_API_KEY": 403,
    "INVALID_API_KEY": 400,
    "ORIGIN_NOT_ALLOWED": 403,
    "ORIGIN_REQUIRED": 403,
    "INVALID_ENDPOINT": 400,
    "MISSING_TOKEN": 401,
    "INVALID_TOKEN": 401,
    "SESSION_REVOKED": 401,
    "USER_NOT_FOUND": 401,
    "TOKEN_EXPIRED": 401,
    "INVALID_CREDENTIALS": 401,
    "REAUTHENTICATION_REQUIRED": 401,
    "NOT_OWNER": 400,
    "PLAN_REQUIRED": None,
    "RATE_LIMITED": 429,
    "UNSUPPORTED_CONTENT_TYPE": 400,
    "EMPTY_BODY": 400,
    "MISSING_UNIQUE_ID": 400,
    "INVALID_STRATEGY": 400,
    "RECORD_NOT_FOUND": 400,
    "REQUIRED_FIELD_MISSING": 400,
    "NOT_AN_OBJECT": 400,
    "TYPE_MISMATCH": 400,
    "INVALID_FIELD": 400,
    "FIELD_NOT_ALLOWED": 400,
    "EMPTY_UPDATE": 400,
    "PASSWORD_POLICY": 400,
    "INVALID_EMAIL": None,
    "EMAIL_TAKEN": None,
    "USERNAME_TAKEN": 400,
    "VERSION_CONFLICT": 412,
    "INVALID_CODE": None,
    "UNSUPPORTED_HASH": None,
    "PAYLOAD_TOO_LARGE": 413,
    "SERVICE_UNAVAILABLE": 503,
}

# Reasons of the §7.1 column that no request to /1/ce/… can produce: they belong to the
# profile and credentials routes (FIELD_NOT_ALLOWED is custom data in updateMe; EMPTY_UPDATE
# is an update with no field, which a document can never be).
NOT_ON_THIS_ROUTE = {"FIELD_NOT_ALLOWED", "EMPTY_UPDATE"}


def test_ce_status_table_is_the_spec_table() -> None:
    assert {reason.value: status for reason, status in CE_STATUS.items()} == SPEC_CE_STATUS
    assert {r.value for r in Reason} == set(SPEC_CE_STATUS)


# --------------------------------------------------------------------------------------------
# PUT — successful updates
# --------------------------------------------------------------------------------------------

PUT_SUCCESS = [
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {**VALID, "plain": True}),
        {"username": "jane", "colour": "red", "plain": True},
        id="force_is_the_default_strategy_and_replaces_the_document",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="force"), bearer(w.jane.token), VALID),
        {"username": "jane", "colour": "red"},
        id="force_explicit",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="FORCE"), bearer(w.jane.token), VALID),
        {"username": "jane", "colour": "red"},
        id="strategy_value_is_case_insensitive_force",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": "Janet", "password": PASSWORD}),
        {"username": "Janet"},
        id="force_renames_the_user",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"username": "JANE"}),
        {**INITIAL_DOC, "username": "JANE"},
        id="merge_changes_the_case_of_the_own_username",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"size": 42}),
        {**INITIAL_DOC, "size": 42},
        id="merge_adds_a_member_and_keeps_the_password",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="Merge"), bearer(w.jane.token), {"colour": None}),
        {"username": "jane", "tags": ["a", "b"], "nested": {"x": 1, "y": 2}},
        id="strategy_value_is_case_insensitive_merge_null_removes",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="merge"),
            bearer(w.jane.token),
            {"nested": {"y": None, "z": [1]}, "tags": ["c"]},
        ),
        {"username": "jane", "colour": "blue", "tags": ["c"], "nested": {"x": 1, "z": [1]}},
        id="merge_recurses_into_objects_and_replaces_arrays",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="MERGE"), bearer(w.jane.token), {"email": "x@example.com"}),
        {**INITIAL_DOC, "email": "x@example.com"},
        id="merge_custom_email_is_only_a_custom_field",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="replace"),
            bearer(w.jane.token),
            {"username": "jane", "password": PASSWORD, "k": [1, 2]},
        ),
        {"username": "jane", "k": [1, 2]},
        id="replace_with_an_object_replaces_entirely",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="merge"),
            bearer(w.jane.token),
            raw=b'{"size": 42}',
            content_type=TEXT_TYPE,
        ),
        {**INITIAL_DOC, "size": 42},
        id="text_plain_json_text_is_parsed_as_json",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(),
            bearer(w.jane.token),
            raw=json.dumps(VALID).encode(),
            content_type="text/plain; charset=utf-8",
        ),
        {"username": "jane", "colour": "red"},
        id="text_plain_with_charset_parameter",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.jane.token), VALID, content_type="application/json; charset=utf-8"
        ),
        {"username": "jane", "colour": "red"},
        id="json_with_charset_parameter",
    ),
    pytest.param(
        lambda w: Req(w.owner(), cookie(w.jane.token), VALID),
        {"username": "jane", "colour": "red"},
        id="token_from_the_httponly_cookie",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {"X-Access-Token": w.jane.token}, VALID),
        {"username": "jane", "colour": "red"},
        id="token_from_x_access_token",
    ),
    pytest.param(
        lambda w: Req(w.master(), {}, VALID),
        {"username": "jane", "colour": "red"},
        id="master_key_needs_no_token",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {"X-Master-Key": w.project.master_key}, VALID),
        {"username": "jane", "colour": "red"},
        id="master_key_in_x_master_key_header",
    ),
    pytest.param(
        lambda w: Req(w.master(), bearer(w.bob.token), VALID),
        {"username": "jane", "colour": "red"},
        id="master_key_overrides_ownership",
    ),
    pytest.param(
        lambda w: Req(w.master(), bearer("not-a-token"), VALID),
        {"username": "jane", "colour": "red"},
        id="master_key_overrides_an_invalid_token",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {**bearer(w.jane.token), "If-Match": '"1"'}, VALID),
        {"username": "jane", "colour": "red"},
        id="if_match_the_current_version",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {**bearer(w.jane.token), "If-Match": "*"}, VALID),
        {"username": "jane", "colour": "red"},
        id="if_match_star",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {}),
        INITIAL_DOC,
        id="merge_of_nothing_changes_nothing_and_keeps_the_version",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {**INITIAL_DOC, "password": PASSWORD}),
        INITIAL_DOC,
        id="force_with_the_same_document_and_password_keeps_the_version",
    ),
]


@pytest.mark.parametrize("data_only", [False, True], ids=["record", "data_only"])
@pytest.mark.parametrize(("make", "expected"), PUT_SUCCESS)
async def test_put_success(
    world: World, make: Build, expected: dict[str, Any], data_only: bool
) -> None:
    before = assert_record(await send(world.client, "GET", Req(world.master())), version=1)
    req = await build(world, make)
    if data_only:
        req = Req(
            {**req.params, "dataOnly": "true"}, req.headers, req.body, req.raw, req.content_type
        )
    response = await send(world.client, "PUT", req)
    version = 1 if expected == INITIAL_DOC else 2
    if data_only:
        assert_document(response, expected, version=version)
    else:
        assert_record(response, unique_id=world.jane.unique_id, data=expected, version=version)
    # Read back: the stored record is the answer.
    stored = await send(world.client, "GET", Req(world.master()))
    after = assert_record(stored, unique_id=world.jane.unique_id, data=expected, version=version)
    assert stored.headers["etag"] == response.headers["etag"]
    if not data_only:
        assert response.json() == after
    assert after["createdAt"] == before["createdAt"]
    if version == 1:
        assert after["updatedAt"] == before["updatedAt"]
    # No password change: no session was revoked, no cookie touched, no token handed out.
    assert "set-cookie" not in response.headers
    assert "authorization" not in response.headers
    again = await send(world.client, "GET", Req(world.owner(), bearer(world.jane.token)))
    assert_record(again, data=expected, version=version)


# --------------------------------------------------------------------------------------------
# PUT — refused updates: exact envelope, and nothing written
# --------------------------------------------------------------------------------------------


def _expire_session(w: World) -> Req:
    sql(
        w.db,
        "UPDATE sessions SET expires_at = ? WHERE id = ?",
        (now_ms() - 1000, w.session_hex(w.jane)),
    )
    return Req(w.owner(), bearer(w.jane.token), VALID)


def _revoke_session(w: World) -> Req:
    sql(
        w.db,
        "UPDATE sessions SET revoked_at = ? WHERE id = ?",
        (now_ms(), w.session_hex(w.jane)),
    )
    return Req(w.owner(), bearer(w.jane.token), VALID)


async def _signed_out(w: World) -> Req:
    body = await gql(w.client, SIGN_OUT, headers=w.jane.auth)
    assert body["data"] == {"signOut": True}, body
    return Req(w.owner(), cookie(w.jane.token), VALID)


def _aged(w: World, req: Req) -> Req:
    age_sessions(w.db, 3600)
    return req


# Rows after which Jane's and Bob's tokens are expected to be dead.
TOKENS_DEAD = {"SESSION_REVOKED", "TOKEN_EXPIRED"}

PUT_REFUSED = [
    # ---- 400 ----
    pytest.param(
        lambda w: Req({"key": "nope", "uniqueId": w.jane.unique_id}, bearer(w.jane.token), VALID),
        400,
        "INVALID_API_KEY",
        id="400_unknown_api_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(masterKey="nope"), {}, VALID),
        400,
        "INVALID_API_KEY",
        id="400_unknown_master_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(masterKey=w.other.master_key), {}, VALID),
        400,
        "INVALID_API_KEY",
        id="400_master_key_of_another_project",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), VALID, path="/1/ce/staff"),
        400,
        "INVALID_ENDPOINT",
        id="400_unknown_endpoint",
    ),
    pytest.param(
        lambda w: Req(w.master(), {}, VALID, path="/1/ce/staff"),
        400,
        "INVALID_ENDPOINT",
        id="400_unknown_endpoint_with_master_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), VALID, path="/1/ce/Users"),
        400,
        "INVALID_ENDPOINT",
        id="400_malformed_endpoint_name",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), VALID, content_type="text/html"),
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_text_html_content_type",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), VALID, content_type=None),
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_no_content_type",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(),
            bearer(w.jane.token),
            raw=b"username=jane&password=x",
            content_type="application/x-www-form-urlencoded",
        ),
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_form_content_type",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), raw=b""),
        400,
        "EMPTY_BODY",
        id="400_empty_json_body",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), raw=b" \r\n\t "),
        400,
        "EMPTY_BODY",
        id="400_whitespace_only_body",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), raw=b"", content_type=TEXT_TYPE),
        400,
        "EMPTY_BODY",
        id="400_empty_text_body",
    ),
    pytest.param(
        lambda w: Req({"key": w.project.api_key}, bearer(w.jane.token), VALID),
        400,
        "MISSING_UNIQUE_ID",
        id="400_no_unique_id",
    ),
    pytest.param(
        lambda w: Req(w.owner(uniqueId=""), bearer(w.jane.token), VALID),
        400,
        "MISSING_UNIQUE_ID",
        id="400_empty_unique_id",
    ),
    pytest.param(
        lambda w: Req({"key": w.project.api_key, "masterKey": w.project.master_key}, {}, VALID),
        400,
        "MISSING_UNIQUE_ID",
        id="400_no_unique_id_with_master_key",
    ),
    pytest.param(
        lambda w: Req(w.master(UNKNOWN_ID), {}, VALID),
        400,
        "RECORD_NOT_FOUND",
        id="400_master_key_unknown_record",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": "jane", "colour": "red"}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_force_without_password",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"password": PASSWORD, "colour": "red"}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_force_without_username",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_force_empty_object",
    ),
    pytest.param(
        lambda w: Req(w.master(), {}, {"username": "jane"}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_master_key_force_without_password",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="replace"), bearer(w.jane.token), {"username": "jane"}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_replace_without_password",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"username": None}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_merge_null_username",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"username": ""}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_merge_empty_username",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": None}),
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_merge_null_password",
    ),
    pytest.param(
        lambda w: Req({**w.owner(), "uniqueId": w.bob.unique_id}, bearer(w.jane.token), VALID),
        400,
        "NOT_OWNER",
        id="400_another_users_record",
    ),
    pytest.param(
        lambda w: Req(
            {**w.owner(), "uniqueId": w.bob.unique_id},
            cookie(w.jane.token),
            {"username": "bob", "password": PASSWORD},
        ),
        400,
        "NOT_OWNER",
        id="400_another_users_record_via_cookie",
    ),
    pytest.param(
        lambda w: Req(w.owner(uniqueId=UNKNOWN_ID), bearer(w.jane.token), VALID),
        400,
        "NOT_OWNER",
        id="400_unknown_record_with_a_user_token_is_not_owner",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="patch"), bearer(w.jane.token), VALID),
        400,
        "INVALID_STRATEGY",
        id="400_unknown_strategy",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy=""), bearer(w.jane.token), VALID),
        400,
        "INVALID_STRATEGY",
        id="400_empty_strategy",
    ),
    pytest.param(
        lambda w: Req(w.master(strategy="upsert"), {}, VALID),
        400,
        "INVALID_STRATEGY",
        id="400_unknown_strategy_with_master_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="replace"), bearer(w.jane.token), [VALID]),
        400,
        "TYPE_MISMATCH",
        id="400_replace_object_with_array",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="replace"), bearer(w.jane.token), 42),
        400,
        "TYPE_MISMATCH",
        id="400_replace_object_with_number",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="replace"),
            bearer(w.jane.token),
            raw=b"just some text",
            content_type=TEXT_TYPE,
        ),
        400,
        "TYPE_MISMATCH",
        id="400_replace_with_text_plain_string",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.jane.token), raw=b"just some text", content_type=TEXT_TYPE
        ),
        400,
        "NOT_AN_OBJECT",
        id="400_force_text_plain_string",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.jane.token), raw=b'{"username": "jane",', content_type=TEXT_TYPE
        ),
        400,
        "NOT_AN_OBJECT",
        id="400_force_text_plain_broken_json_is_a_string",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), "a JSON string"),
        400,
        "NOT_AN_OBJECT",
        id="400_force_json_string",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), [VALID]),
        400,
        "NOT_AN_OBJECT",
        id="400_force_json_array",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="merge"),
            bearer(w.jane.token),
            raw=b"just some text",
            content_type=TEXT_TYPE,
        ),
        400,
        "NOT_AN_OBJECT",
        id="400_merge_text_plain_string",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), raw=b'{"username": "jane",'),
        400,
        "INVALID_FIELD",
        id="400_application_json_that_is_not_json",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": 42, "password": PASSWORD}),
        400,
        "INVALID_FIELD",
        id="400_username_not_a_string",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": "jane", "password": 123456}),
        400,
        "INVALID_FIELD",
        id="400_password_not_a_string",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": "jane", "password": "ab1"}),
        400,
        "PASSWORD_POLICY",
        id="400_new_password_too_short",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": "onlyletters"}),
        400,
        "PASSWORD_POLICY",
        id="400_new_password_without_digit",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": "password1"}),
        400,
        "PASSWORD_POLICY",
        id="400_new_password_on_the_deny_list",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.jane.token), {"username": "jane42", "password": "jane42"}
        ),
        400,
        "PASSWORD_POLICY",
        id="400_new_password_equal_to_username",
    ),
    pytest.param(
        lambda w: Req(w.master(), {}, {"username": "jane", "password": "x" * 31 + "1"}),
        400,
        "PASSWORD_POLICY",
        id="400_master_key_new_password_too_long",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), {"username": "bob", "password": PASSWORD}),
        400,
        "USERNAME_TAKEN",
        id="400_force_rename_to_a_taken_username",
    ),
    pytest.param(
        lambda w: Req(w.owner(strategy="merge"), bearer(w.jane.token), {"username": "BOB"}),
        400,
        "USERNAME_TAKEN",
        id="400_merge_rename_to_a_taken_username_other_case",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.jane.token), {"username": "bob", "password": NEW_PASSWORD}
        ),
        400,
        "USERNAME_TAKEN",
        id="400_taken_username_with_a_new_password_revokes_nothing",
    ),
    # ---- 401 ----
    pytest.param(
        lambda w: Req(w.owner(), {}, VALID),
        401,
        "MISSING_TOKEN",
        id="401_no_token",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer("not-a-token"), VALID),
        401,
        "INVALID_TOKEN",
        id="401_garbage_bearer_token",
    ),
    pytest.param(
        lambda w: Req(w.owner(), cookie("not-a-token"), VALID),
        401,
        "INVALID_TOKEN",
        id="401_garbage_cookie_token",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), bearer(w.resigned(key="another-secret-0123456789-abcdefghij")), VALID
        ),
        401,
        "INVALID_TOKEN",
        id="401_token_signed_with_another_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.resigned(key=None, algorithm="none")), VALID),
        401,
        "INVALID_TOKEN",
        id="401_unsigned_alg_none_token",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.resigned(algorithm="HS512")), VALID),
        401,
        "INVALID_TOKEN",
        id="401_same_key_another_hmac_algorithm",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {**bearer("not-a-token"), **cookie(w.jane.token)}, VALID),
        401,
        "INVALID_TOKEN",
        id="401_invalid_bearer_never_falls_back_to_the_cookie",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.carol.token), VALID),
        401,
        "INVALID_TOKEN",
        id="401_token_of_another_project",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.token(exp=int(time.time()) - 60)), VALID),
        401,
        "TOKEN_EXPIRED",
        id="401_expired_token",
    ),
    pytest.param(
        _expire_session,
        401,
        "TOKEN_EXPIRED",
        id="401_expired_session",
    ),
    pytest.param(
        _revoke_session,
        401,
        "SESSION_REVOKED",
        id="401_revoked_session",
    ),
    pytest.param(
        _signed_out,
        401,
        "SESSION_REVOKED",
        id="401_signed_out_session_via_cookie",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.token(unique_id=w.bob.unique_id)), VALID),
        401,
        "USER_NOT_FOUND",
        id="401_token_whose_user_is_not_the_sessions",
    ),
    pytest.param(
        lambda w: _aged(
            w, Req(w.owner(), bearer(w.jane.token), {"username": "jane", "password": NEW_PASSWORD})
        ),
        401,
        "REAUTHENTICATION_REQUIRED",
        id="401_force_password_change_with_an_old_session",
    ),
    pytest.param(
        lambda w: _aged(
            w, Req(w.owner(strategy="merge"), cookie(w.jane.token), {"password": NEW_PASSWORD})
        ),
        401,
        "REAUTHENTICATION_REQUIRED",
        id="401_merge_password_change_with_an_old_session",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(), {"Authorization": f"Basic {w.jane.token}", **cookie(w.jane.token)}, VALID
        ),
        401,
        "INVALID_TOKEN",
        id="401_non_bearer_authorization_decides_and_fails",
    ),
    # ---- 403 ----
    pytest.param(
        lambda w: Req({"uniqueId": w.jane.unique_id}, bearer(w.jane.token), VALID),
        403,
        "MISSING_API_KEY",
        id="403_no_api_key",
    ),
    pytest.param(
        lambda w: Req({"uniqueId": w.jane.unique_id, "masterKey": w.project.master_key}, {}, VALID),
        403,
        "MISSING_API_KEY",
        id="403_master_key_still_needs_the_api_key",
    ),
    pytest.param(
        lambda w: Req(
            {"uniqueId": w.jane.unique_id}, {"X-Master-Key": w.project.master_key}, VALID
        ),
        403,
        "MISSING_API_KEY",
        id="403_master_key_header_still_needs_the_api_key",
    ),
    pytest.param(
        lambda w: Req({"key": "", "uniqueId": w.jane.unique_id}, bearer(w.jane.token), VALID),
        403,
        "MISSING_API_KEY",
        id="403_empty_api_key",
    ),
    # ---- 412 ----
    pytest.param(
        lambda w: Req(w.owner(), {**bearer(w.jane.token), "If-Match": '"7"'}, VALID),
        412,
        "VERSION_CONFLICT",
        id="412_if_match_another_version",
    ),
    pytest.param(
        lambda w: Req(w.master(), {"If-Match": '"0"'}, VALID),
        412,
        "VERSION_CONFLICT",
        id="412_if_match_another_version_with_master_key",
    ),
    pytest.param(
        lambda w: Req(
            w.owner(strategy="merge"),
            {**bearer(w.jane.token), "If-Match": '"2"'},
            {"password": NEW_PASSWORD},
        ),
        412,
        "VERSION_CONFLICT",
        id="412_stale_password_change_revokes_nothing",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {**bearer(w.jane.token), "If-Match": 'W/"1"'}, VALID),
        412,
        "VERSION_CONFLICT",
        id="412_weak_etag_never_matches",
    ),
    pytest.param(
        lambda w: Req(w.owner(), {**bearer(w.jane.token), "If-Match": "1"}, VALID),
        412,
        "VERSION_CONFLICT",
        id="412_unquoted_etag_never_matches",
    ),
]


@pytest.mark.parametrize(("make", "status", "reason"), PUT_REFUSED)
async def test_put_refused(world: World, make: Build, status: int, reason: str) -> None:
    before = await snapshot(world)
    req = await build(world, make)
    response = await send(world.client, "PUT", req)
    assert_error(response, status, reason)
    assert "etag" not in response.headers
    assert not cookie_cleared(response)
    await assert_unchanged(world, before, tokens_alive=reason not in TOKENS_DEAD)


async def test_password_change_by_the_owner_revokes_every_session_and_clears_the_cookie(
    world: World,
) -> None:
    w = world
    # A second session of Jane's, signed in through the record API.
    login = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            body={"username": "jane", "password": PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    second = assert_signed_in(login)
    response = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), cookie(w.jane.token), {"password": NEW_PASSWORD}),
    )
    assert_record(response, unique_id=w.jane.unique_id, data=INITIAL_DOC, version=2)
    assert NEW_PASSWORD not in response.text
    assert cookie_cleared(response)
    assert "authorization" not in response.headers
    # Every session of the user is gone, the current one included.
    for token in (w.jane.token, second):
        for headers in (bearer(token), cookie(token)):
            refused = await send(w.client, "GET", Req(w.owner(), headers))
            assert_error(refused, 401, "SESSION_REVOKED")
    # Bob's session is untouched.
    bob = await send(
        w.client,
        "GET",
        Req({"key": w.project.api_key, "uniqueId": w.bob.unique_id}, bearer(w.bob.token)),
    )
    assert_record(bob, unique_id=w.bob.unique_id)
    # The old password no longer signs in; the new one does, and its token works.
    creds = {"key": w.project.api_key}
    old = await send(
        w.client,
        "POST",
        Req(creds, body={"username": "jane", "password": PASSWORD}, path="/1/ce/users/login"),
    )
    assert_error(old, 401, "INVALID_CREDENTIALS")
    new = await send(
        w.client,
        "POST",
        Req(creds, body={"username": "jane", "password": NEW_PASSWORD}, path="/1/ce/users/login"),
    )
    token = assert_signed_in(assert_ok(new))
    again = await send(w.client, "GET", Req(w.owner(), bearer(token)))
    assert_record(again, data=INITIAL_DOC, version=2)


def assert_ok(response: httpx.Response) -> httpx.Response:
    assert_record(response)
    return response


async def test_password_change_with_the_master_key_needs_no_reauthentication(
    world: World,
) -> None:
    w = world
    age_sessions(w.db, 3600)  # nobody signed in recently
    response = await send(
        w.client, "PUT", Req(w.master(strategy="merge"), {}, {"password": NEW_PASSWORD})
    )
    assert_record(response, unique_id=w.jane.unique_id, data=INITIAL_DOC, version=2)
    # A credential change by any route revokes all the user's sessions (§4).
    refused = await send(w.client, "GET", Req(w.owner(), bearer(w.jane.token)))
    assert_error(refused, 401, "SESSION_REVOKED")
    login = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            body={"username": "jane", "password": NEW_PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    assert_signed_in(assert_ok(login))


async def test_same_password_with_an_old_session_is_no_credential_change(world: World) -> None:
    w = world
    age_sessions(w.db, 3600)
    response = await send(
        w.client,
        "PUT",
        Req(w.owner(), bearer(w.jane.token), {"username": "jane", "password": PASSWORD, "n": 1}),
    )
    assert_record(response, data={"username": "jane", "n": 1}, version=2)
    assert not cookie_cleared(response)
    # Not a credential change: the session survives.
    again = await send(w.client, "GET", Req(w.owner(), bearer(w.jane.token)))
    assert_record(again, data={"username": "jane", "n": 1}, version=2)


@pytest.mark.parametrize("settings_env", [{"AMEND_REAUTH_WINDOW_SECONDS": "7200"}], indirect=True)
async def test_reauthentication_window_is_configurable(world: World) -> None:
    w = world
    age_sessions(w.db, 3600)  # inside a two-hour window
    response = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": NEW_PASSWORD}),
    )
    assert_record(response, data=INITIAL_DOC, version=2)
    assert cookie_cleared(response)
    refused = await send(w.client, "GET", Req(w.owner(), bearer(w.jane.token)))
    assert_error(refused, 401, "SESSION_REVOKED")


async def test_if_match_prevents_a_lost_update(world: World) -> None:
    w = world
    read = await send(w.client, "GET", Req(w.owner(), bearer(w.jane.token)))
    tag = read.headers["etag"]
    assert tag == '"1"'
    first = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), {**bearer(w.jane.token), "If-Match": tag}, {"a": 1}),
    )
    assert_record(first, data={**INITIAL_DOC, "a": 1}, version=2)
    before = await snapshot(w)
    second = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), {**bearer(w.jane.token), "If-Match": tag}, {"b": 2}),
    )
    assert_error(second, 412, "VERSION_CONFLICT")
    await assert_unchanged(w, before)
    third = await send(
        w.client,
        "PUT",
        Req(
            w.owner(strategy="merge"),
            {**bearer(w.jane.token), "If-Match": first.headers["etag"]},
            {"b": 2},
        ),
    )
    assert_record(third, data={**INITIAL_DOC, "a": 1, "b": 2}, version=3)


@pytest.mark.parametrize("settings_env", [{"AMEND_MAX_BODY_BYTES": "1024"}], indirect=True)
@pytest.mark.parametrize("chunked", [False, True], ids=["content_length", "chunked"])
@pytest.mark.parametrize(
    ("method", "path", "with_id"),
    [
        pytest.param("PUT", "/1/ce/users", True, id="put_update"),
        pytest.param("POST", "/1/ce/users", False, id="post_sign_up"),
        pytest.param("POST", "/1/ce/users/login", False, id="post_login"),
    ],
)
async def test_body_above_the_limit_is_413_in_the_record_envelope(
    world: World, method: str, path: str, with_id: bool, chunked: bool
) -> None:
    w = world
    before = await snapshot(w)
    big = json.dumps({"username": "jane", "password": PASSWORD, "blob": "x" * 2000}).encode()
    params = w.owner() if with_id else {"key": w.project.api_key}
    headers = {**bearer(w.jane.token), "Content-Type": JSON_TYPE}

    async def stream() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 256):
            yield big[start : start + 256]

    # Declared with Content-Length, or streamed without one (chunked).
    response = await w.client.request(
        method, path, params=params, headers=headers, content=stream() if chunked else big
    )
    assert ("content-length" in response.request.headers) is not chunked
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
    await assert_unchanged(w, before)
    assert sql(w.db, "SELECT count(*) FROM users")[0][0] == 3


@pytest.mark.parametrize(
    "settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1"}], indirect=True
)
async def test_credential_changes_through_put_are_throttled(world: World) -> None:
    w = world
    first = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": NEW_PASSWORD}),
    )
    assert_record(first, version=2)
    login = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            body={"username": "jane", "password": NEW_PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    token = assert_signed_in(assert_ok(login))
    w.jane = Account("jane", NEW_PASSWORD, token, w.jane.unique_id, w.jane.session_id)
    before = await snapshot(w)
    second = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), bearer(token), {"password": "Th1rdSecret"}),
    )
    assert_error(second, 429, "RATE_LIMITED")
    assert second.headers["retry-after"].isdigit()
    assert int(second.headers["retry-after"]) >= 1
    assert await snapshot(w) == before
    alive = await send(w.client, "GET", Req(w.owner(), bearer(token)))
    assert_record(alive, version=2)


@pytest.mark.parametrize(
    "settings_env", [{"AMEND_CREDENTIAL_CHANGES_PER_WINDOW": "1"}], indirect=True
)
async def test_custom_email_field_changes_are_not_credential_changes(world: World) -> None:
    """`data.email` is a custom field (§5): changing it is not a credential change, so it does
    not count against the per-user credential-change throttle (§4)."""
    w = world
    for address in ("a@example.com", "b@example.com"):
        custom = await send(
            w.client,
            "PUT",
            Req(w.owner(strategy="merge"), bearer(w.jane.token), {"email": address}),
        )
        assert_record(custom, data={**INITIAL_DOC, "email": address})
    change = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), bearer(w.jane.token), {"password": NEW_PASSWORD}),
    )
    assert_record(change, data={**INITIAL_DOC, "email": "b@example.com"}, version=4)


# --------------------------------------------------------------------------------------------
# Origin policy (403) on every method of the route
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "status", "reason"),
    [
        pytest.param(EVIL, 403, "ORIGIN_NOT_ALLOWED", id="403_unlisted_origin"),
        pytest.param("http://app.example.com", 403, "ORIGIN_NOT_ALLOWED", id="403_other_scheme"),
        pytest.param(None, 403, "ORIGIN_REQUIRED", id="403_no_origin_refused_by_the_project"),
        pytest.param(APP, 200, None, id="200_listed_origin"),
    ],
)
@pytest.mark.parametrize("method", ["PUT", "GET", "POST_SIGN_UP", "POST_LOGIN"])
async def test_origin_policy(
    client: httpx.AsyncClient,
    make_project_fn: Any,
    db: TestDB,
    method: str,
    origin: str | None,
    status: int,
    reason: str | None,
) -> None:
    strict: ProjectKeys = await make_project_fn("strict", origins=[APP], allow_no_origin=False)
    created = await send(
        client,
        "POST",
        Req({"key": strict.api_key}, {"Origin": APP}, {"username": "sam", "password": PASSWORD}),
    )
    sam_id = assert_record(created, status=201)["uniqueId"]
    sam_token = assert_signed_in(created)
    headers = {} if origin is None else {"Origin": origin}
    owner = {"key": strict.api_key, "uniqueId": sam_id}
    reqs = {
        "PUT": (
            "PUT",
            Req(
                owner,
                {**headers, **bearer(sam_token)},
                {"username": "sam", "password": PASSWORD, "c": 1},
            ),
        ),
        "GET": ("GET", Req(owner, {**headers, **bearer(sam_token)})),
        "POST_SIGN_UP": (
            "POST",
            Req({"key": strict.api_key}, headers, {"username": "tom", "password": PASSWORD}),
        ),
        "POST_LOGIN": (
            "POST",
            Req(
                {"key": strict.api_key},
                headers,
                {"username": "sam", "password": PASSWORD},
                path="/1/ce/users/login",
            ),
        ),
    }
    verb, req = reqs[method]
    users_before = sql(db, "SELECT count(*) FROM users")[0][0]
    response = await send(client, verb, req)
    if reason is None:
        assert_record(response, status=201 if method == "POST_SIGN_UP" else 200)
        return
    assert_error(response, status, reason)
    assert sql(db, "SELECT count(*) FROM users")[0][0] == users_before
    record = await send(
        client, "GET", Req({**owner, "masterKey": strict.master_key}, {"Origin": APP})
    )
    assert_record(record, data={"username": "sam"}, version=1)


# --------------------------------------------------------------------------------------------
# GET — read a record (extension; same owner rule, same errors)
# --------------------------------------------------------------------------------------------

GET_SUCCESS = [
    pytest.param(lambda w: Req(w.owner(), bearer(w.jane.token)), id="owner_bearer"),
    pytest.param(lambda w: Req(w.owner(), cookie(w.jane.token)), id="owner_cookie"),
    pytest.param(lambda w: Req(w.master(), {}), id="master_key"),
    pytest.param(lambda w: Req(w.master(), bearer(w.bob.token)), id="master_key_overrides_owner"),
]


@pytest.mark.parametrize("data_only", [False, True], ids=["record", "data_only"])
@pytest.mark.parametrize("make", GET_SUCCESS)
async def test_get_success(world: World, make: Build, data_only: bool) -> None:
    req = await build(world, make)
    if data_only:
        req = Req({**req.params, "dataOnly": "true"}, req.headers)
    response = await send(world.client, "GET", req)
    if data_only:
        assert_document(response, INITIAL_DOC, version=1)
    else:
        body = assert_record(response, unique_id=world.jane.unique_id, data=INITIAL_DOC, version=1)
        assert body["createdAt"] == body["updatedAt"]


GET_REFUSED = [
    pytest.param(
        lambda w: Req({"key": "nope", "uniqueId": w.jane.unique_id}, bearer(w.jane.token)),
        400,
        "INVALID_API_KEY",
        id="400_unknown_api_key",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.jane.token), path="/1/ce/staff"),
        400,
        "INVALID_ENDPOINT",
        id="400_unknown_endpoint",
    ),
    pytest.param(
        lambda w: Req({"key": w.project.api_key}, bearer(w.jane.token)),
        400,
        "MISSING_UNIQUE_ID",
        id="400_no_unique_id",
    ),
    pytest.param(
        lambda w: Req(w.master(UNKNOWN_ID), {}),
        400,
        "RECORD_NOT_FOUND",
        id="400_master_key_unknown_record",
    ),
    pytest.param(
        lambda w: Req(w.owner(uniqueId=w.bob.unique_id), bearer(w.jane.token)),
        400,
        "NOT_OWNER",
        id="400_another_users_record",
    ),
    pytest.param(
        lambda w: Req(w.owner(uniqueId=UNKNOWN_ID), bearer(w.jane.token)),
        400,
        "NOT_OWNER",
        id="400_unknown_record_with_a_user_token_is_not_owner",
    ),
    pytest.param(lambda w: Req(w.owner(), {}), 401, "MISSING_TOKEN", id="401_no_token"),
    pytest.param(
        lambda w: Req(w.owner(), bearer("garbage")), 401, "INVALID_TOKEN", id="401_garbage_token"
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.carol.token)),
        401,
        "INVALID_TOKEN",
        id="401_token_of_another_project",
    ),
    pytest.param(
        lambda w: Req(w.owner(), bearer(w.token(exp=int(time.time()) - 60))),
        401,
        "TOKEN_EXPIRED",
        id="401_expired_token",
    ),
    pytest.param(_revoke_session, 401, "SESSION_REVOKED", id="401_revoked_session"),
    pytest.param(
        lambda w: Req({"uniqueId": w.jane.unique_id}, bearer(w.jane.token)),
        403,
        "MISSING_API_KEY",
        id="403_no_api_key",
    ),
    pytest.param(
        lambda w: Req({"uniqueId": w.jane.unique_id, "masterKey": w.project.master_key}, {}),
        403,
        "MISSING_API_KEY",
        id="403_master_key_still_needs_the_api_key",
    ),
]


@pytest.mark.parametrize(("make", "status", "reason"), GET_REFUSED)
async def test_get_refused(world: World, make: Build, status: int, reason: str) -> None:
    req = await build(world, make)
    response = await send(world.client, "GET", Req(req.params, req.headers, path=req.path))
    assert_error(response, status, reason)
    assert "etag" not in response.headers


# --------------------------------------------------------------------------------------------
# POST — sign-up (extension): 201 with the record body, a session
# --------------------------------------------------------------------------------------------

SIGN_UP_SUCCESS = [
    pytest.param(
        {"username": "alice", "password": PASSWORD},
        JSON_TYPE,
        {"username": "alice"},
        id="minimal_document",
    ),
    pytest.param(
        {
            "username": "Alice",
            "password": PASSWORD,
            "colour": "green",
            "email": "alice@example.com",
            "nested": {"k": [1, None]},
        },
        JSON_TYPE,
        {
            "username": "Alice",
            "colour": "green",
            "email": "alice@example.com",
            "nested": {"k": [1, None]},
        },
        id="extra_members_become_custom_data",
    ),
    pytest.param(
        {"username": "alice", "password": PASSWORD, "n": 1},
        TEXT_TYPE,
        {"username": "alice", "n": 1},
        id="text_plain_json_text",
    ),
]


@pytest.mark.parametrize(("document", "content_type", "expected"), SIGN_UP_SUCCESS)
async def test_sign_up_success(
    world: World, document: dict[str, Any], content_type: str, expected: dict[str, Any]
) -> None:
    w = world
    response = await send(
        w.client, "POST", Req({"key": w.project.api_key}, {}, document, content_type=content_type)
    )
    body = assert_record(response, status=201, data=expected, version=1)
    assert body["createdAt"] == body["updatedAt"]
    assert PASSWORD not in response.text
    token = assert_signed_in(response)
    # The token works, from the header and from the cookie; the record is stored as answered.
    mine = {"key": w.project.api_key, "uniqueId": body["uniqueId"]}
    for headers in (bearer(token), cookie(token)):
        read = await send(w.client, "GET", Req(mine, headers))
        assert read.json() == body
        assert read.headers["etag"] == '"1"'
    # `email` in the document is custom data, never the account email (§5).
    me = await gql(w.client, "query { me { email data } }", headers=bearer(token))
    assert me["data"]["me"]["email"] is None
    # The password signs in.
    login = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            {},
            {"username": expected["username"], "password": PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    assert_record(login, unique_id=body["uniqueId"], data=expected)


SIGN_UP_REFUSED = [
    pytest.param(
        {"key": "K"},
        {"username": "jane", "password": PASSWORD},
        JSON_TYPE,
        400,
        "USERNAME_TAKEN",
        id="400_username_taken",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "JANE", "password": PASSWORD},
        JSON_TYPE,
        400,
        "USERNAME_TAKEN",
        id="400_username_taken_other_case",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice", "password": "ab1"},
        JSON_TYPE,
        400,
        "PASSWORD_POLICY",
        id="400_password_too_short",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice", "password": "password1"},
        JSON_TYPE,
        400,
        "PASSWORD_POLICY",
        id="400_password_on_the_deny_list",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice1", "password": "alice1"},
        JSON_TYPE,
        400,
        "PASSWORD_POLICY",
        id="400_password_equal_to_username",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice"},
        JSON_TYPE,
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_no_password",
    ),
    pytest.param(
        {"key": "K"},
        {"password": PASSWORD},
        JSON_TYPE,
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_no_username",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "", "password": PASSWORD},
        JSON_TYPE,
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_empty_username",
    ),
    pytest.param({"key": "K"}, {}, JSON_TYPE, 400, "REQUIRED_FIELD_MISSING", id="400_empty_object"),
    pytest.param(
        {"key": "K"},
        [{"username": "alice", "password": PASSWORD}],
        JSON_TYPE,
        400,
        "NOT_AN_OBJECT",
        id="400_array",
    ),
    pytest.param(
        {"key": "K"}, "alice", TEXT_TYPE, 400, "NOT_AN_OBJECT", id="400_text_plain_string"
    ),
    pytest.param(
        {"key": "K"},
        {"username": 7, "password": PASSWORD},
        JSON_TYPE,
        400,
        "INVALID_FIELD",
        id="400_username_not_a_string",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice", "password": PASSWORD},
        "text/html",
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_text_html",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "alice", "password": PASSWORD},
        None,
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_no_content_type",
    ),
    pytest.param({"key": "K"}, b"", JSON_TYPE, 400, "EMPTY_BODY", id="400_empty_body"),
    pytest.param(
        {"key": "nope"},
        {"username": "alice", "password": PASSWORD},
        JSON_TYPE,
        400,
        "INVALID_API_KEY",
        id="400_unknown_api_key",
    ),
    pytest.param(
        {"key": "K", "path": "/1/ce/staff"},
        {"username": "alice", "password": PASSWORD},
        JSON_TYPE,
        400,
        "INVALID_ENDPOINT",
        id="400_unknown_endpoint",
    ),
    pytest.param(
        {},
        {"username": "alice", "password": PASSWORD},
        JSON_TYPE,
        403,
        "MISSING_API_KEY",
        id="403_no_api_key",
    ),
]


def _keyed(w: World, spec: dict[str, str]) -> tuple[dict[str, str], str]:
    params = {k: (w.project.api_key if v == "K" else v) for k, v in spec.items() if k != "path"}
    return params, spec.get("path", "/1/ce/users")


@pytest.mark.parametrize(("spec", "document", "content_type", "status", "reason"), SIGN_UP_REFUSED)
async def test_sign_up_refused(
    world: World,
    spec: dict[str, str],
    document: Any,
    content_type: str | None,
    status: int,
    reason: str,
) -> None:
    w = world
    params, path = _keyed(w, spec)
    users = sql(w.db, "SELECT unique_id, version FROM users ORDER BY pk")
    before = await snapshot(w)
    req = (
        Req(params, {}, raw=document, content_type=content_type, path=path)
        if isinstance(document, bytes)
        else Req(params, {}, document, content_type=content_type, path=path)
    )
    response = await send(w.client, "POST", req)
    assert_error(response, status, reason)
    assert "set-cookie" not in response.headers
    assert sql(w.db, "SELECT unique_id, version FROM users ORDER BY pk") == users
    await assert_unchanged(w, before)


# --------------------------------------------------------------------------------------------
# POST /login (extension): 200 with the record body, cookie and Authorization header
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "content_type"),
    [
        pytest.param("jane", JSON_TYPE, id="json"),
        pytest.param("JANE", JSON_TYPE, id="username_is_case_insensitive"),
        pytest.param("jane", TEXT_TYPE, id="text_plain_json_text"),
    ],
)
async def test_login_success(world: World, username: str, content_type: str) -> None:
    w = world
    response = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            {},
            {"username": username, "password": PASSWORD},
            content_type=content_type,
            path="/1/ce/users/login",
        ),
    )
    assert_record(response, unique_id=w.jane.unique_id, data=INITIAL_DOC, version=1)
    token = assert_signed_in(response)
    assert token != w.jane.token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert claims["aud"] == w.project.id
    assert claims["sub"] == w.jane.unique_id
    assert ids.parse_session_id(claims["sid"]) is not None
    assert claims["exp"] - claims["iat"] == 3600
    # The new token works for the record; once its sign-in is old, it still updates data but
    # no longer changes the password...
    age_sessions(w.db, 3600)
    update = await send(
        w.client, "PUT", Req(w.owner(strategy="merge"), bearer(token), {"after": "login"})
    )
    assert_record(update, data={**INITIAL_DOC, "after": "login"}, version=2)
    stale = await send(
        w.client, "PUT", Req(w.owner(strategy="merge"), bearer(token), {"password": NEW_PASSWORD})
    )
    assert_error(stale, 401, "REAUTHENTICATION_REQUIRED")
    # ... until the user signs in again through this route.
    fresh = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            {},
            {"username": "jane", "password": PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    change = await send(
        w.client,
        "PUT",
        Req(w.owner(strategy="merge"), cookie(assert_signed_in(fresh)), {"password": NEW_PASSWORD}),
    )
    assert_record(change, version=3)


LOGIN_REFUSED = [
    pytest.param(
        {"key": "K"},
        {"username": "jane", "password": "Wrong-pass1"},
        JSON_TYPE,
        401,
        "INVALID_CREDENTIALS",
        id="401_wrong_password",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "nobody", "password": PASSWORD},
        JSON_TYPE,
        401,
        "INVALID_CREDENTIALS",
        id="401_unknown_user",
    ),
    pytest.param(
        {"key": "K", "path": "/1/ce/other-pool/login"},
        {"username": "jane", "password": PASSWORD},
        JSON_TYPE,
        400,
        "INVALID_ENDPOINT",
        id="400_unknown_endpoint",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "jane"},
        JSON_TYPE,
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_no_password",
    ),
    pytest.param(
        {"key": "K"},
        {"password": PASSWORD},
        JSON_TYPE,
        400,
        "REQUIRED_FIELD_MISSING",
        id="400_no_username",
    ),
    pytest.param({"key": "K"}, ["jane", PASSWORD], JSON_TYPE, 400, "NOT_AN_OBJECT", id="400_array"),
    pytest.param(
        {"key": "K"},
        {"username": "jane", "password": 1},
        JSON_TYPE,
        400,
        "INVALID_FIELD",
        id="400_password_not_a_string",
    ),
    pytest.param(
        {"key": "K"},
        {"username": "jane", "password": PASSWORD},
        "text/html",
        400,
        "UNSUPPORTED_CONTENT_TYPE",
        id="400_text_html",
    ),
    pytest.param({"key": "K"}, b"  ", JSON_TYPE, 400, "EMPTY_BODY", id="400_empty_body"),
    pytest.param(
        {"key": "nope"},
        {"username": "jane", "password": PASSWORD},
        JSON_TYPE,
        400,
        "INVALID_API_KEY",
        id="400_unknown_api_key",
    ),
    pytest.param(
        {},
        {"username": "jane", "password": PASSWORD},
        JSON_TYPE,
        403,
        "MISSING_API_KEY",
        id="403_no_api_key",
    ),
]


@pytest.mark.parametrize(("spec", "document", "content_type", "status", "reason"), LOGIN_REFUSED)
async def test_login_refused(
    world: World,
    spec: dict[str, str],
    document: Any,
    content_type: str | None,
    status: int,
    reason: str,
) -> None:
    w = world
    params, path = _keyed(w, {"path": "/1/ce/users/login", **spec})
    sessions = sql(w.db, "SELECT count(*) FROM sessions")
    before = await snapshot(w)
    req = (
        Req(params, {}, raw=document, content_type=content_type, path=path)
        if isinstance(document, bytes)
        else Req(params, {}, document, content_type=content_type, path=path)
    )
    response = await send(w.client, "POST", req)
    assert_error(response, status, reason)
    assert "set-cookie" not in response.headers
    assert "etag" not in response.headers
    assert sql(w.db, "SELECT count(*) FROM sessions") == sessions
    await assert_unchanged(w, before)


async def test_login_answers_a_wrong_password_and_an_unknown_user_alike(world: World) -> None:
    w = world
    answers = []
    for username in ("jane", "nobody"):
        response = await send(
            w.client,
            "POST",
            Req(
                {"key": w.project.api_key},
                {},
                {"username": username, "password": "Wr0ngpass"},
                path="/1/ce/users/login",
            ),
        )
        answers.append((response.status_code, response.json(), sorted(response.headers.keys())))
    assert answers[0] == answers[1]
    assert answers[0][1]["error"] == "INVALID_CREDENTIALS"


@pytest.mark.parametrize("settings_env", [{"AMEND_SIGNIN_MAX_FAILURES": "2"}], indirect=True)
async def test_login_is_rate_limited_after_repeated_failures(world: World) -> None:
    w = world

    async def login(password: str) -> httpx.Response:
        return await send(
            w.client,
            "POST",
            Req(
                {"key": w.project.api_key},
                {},
                {"username": "jane", "password": password},
                path="/1/ce/users/login",
            ),
        )

    for _ in range(2):
        assert_error(await login("Wr0ngpass"), 401, "INVALID_CREDENTIALS")
    for password in ("Wr0ngpass", PASSWORD):  # even the right password waits
        limited = await login(password)
        assert_error(limited, 429, "RATE_LIMITED")
        retry = limited.headers["retry-after"]
        assert retry.isdigit()
        assert 1 <= int(retry) <= 900
    # Other users are not affected.
    bob = await send(
        w.client,
        "POST",
        Req(
            {"key": w.project.api_key},
            {},
            {"username": "bob", "password": PASSWORD},
            path="/1/ce/users/login",
        ),
    )
    assert_record(bob, unique_id=w.bob.unique_id)


# --------------------------------------------------------------------------------------------
# Every reason of the §7.1 column is exercised by a row above
# --------------------------------------------------------------------------------------------

EXTRA_ROWS = {
    # Reasons asserted by dedicated tests rather than by a table row.
    "ORIGIN_NOT_ALLOWED": "test_origin_policy",
    "ORIGIN_REQUIRED": "test_origin_policy",
    "RATE_LIMITED": "test_login_is_rate_limited_after_repeated_failures",
    "PAYLOAD_TOO_LARGE": "test_body_above_the_limit_is_413_in_the_record_envelope",
    "SERVICE_UNAVAILABLE": "test_exhausted_pool_answers_503_fast (tests/test_pool.py)",
}


def test_every_reason_of_the_route_is_covered() -> None:
    rows = [*PUT_REFUSED, *GET_REFUSED, *SIGN_UP_REFUSED, *LOGIN_REFUSED]
    covered: dict[str, set[int]] = {}
    for row in rows:
        status, reason = row.values[-2], row.values[-1]
        assert isinstance(status, int)
        assert isinstance(reason, str)
        covered.setdefault(reason, set()).add(status)
        assert SPEC_CE_STATUS[reason] == status, row.id
    possible = {r for r, s in SPEC_CE_STATUS.items() if s is not None} - NOT_ON_THIS_ROUTE
    assert possible - set(covered) == set(EXTRA_ROWS)


@pytest.mark.parametrize(
    ("origin", "status", "reason"),
    [
        pytest.param(None, 200, None, id="200_no_origin_with_the_master_key"),
        pytest.param(EVIL, 403, "ORIGIN_NOT_ALLOWED", id="403_unlisted_origin_with_the_master_key"),
    ],
)
async def test_master_key_and_the_origin_policy(
    client: httpx.AsyncClient,
    make_project_fn: Any,
    origin: str | None,
    status: int,
    reason: str | None,
) -> None:
    """Design choice, from the seed: the master key "overrides the need for Access tokens or
    restrictions applied to Authentication endpoints" and must not be used in client apps, so
    a server-to-server call with the master key and no `Origin` is accepted even when the
    project refuses requests without an origin (SPEC §4 does not name this exception). A
    browser origin that is not listed is still refused."""
    strict: ProjectKeys = await make_project_fn("strict", origins=[APP], allow_no_origin=False)
    created = await send(
        client,
        "POST",
        Req({"key": strict.api_key}, {"Origin": APP}, {"username": "sam", "password": PASSWORD}),
    )
    sam_id = assert_record(created, status=201)["uniqueId"]
    params = {"key": strict.api_key, "uniqueId": sam_id, "masterKey": strict.master_key}
    headers = {} if origin is None else {"Origin": origin}
    doc = {"username": "sam", "password": PASSWORD, "via": "master"}
    response = await send(client, "PUT", Req(params, headers, doc))
    after = await send(client, "GET", Req(params, {"Origin": APP}))
    if reason is None:
        assert_record(response, data={"username": "sam", "via": "master"}, version=2)
        assert_record(after, data={"username": "sam", "via": "master"}, version=2)
    else:
        assert_error(response, status, reason)
        assert_record(after, data={"username": "sam"}, version=1)
