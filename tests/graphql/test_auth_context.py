"""The one auth context (SPEC §4): where the token comes from, what makes it valid, which
project a request belongs to, the origin policy, CORS preflights and security headers."""

from __future__ import annotations

import base64
import json
import time
import warnings
from typing import Any

import httpx
import jwt
import pytest

from api.core.clock import now_ms
from api.services.container import Services
from tests.conftest import SECRET, ProjectKeys
from tests.db import TestDB
from tests.gql import ME, REVOKE, SESSION, SIGN_UP, Account, gql, sign_in, sign_up, top_error

APP = "https://app.example.com"
EVIL = "https://evil.example.com"

UNAUTHENTICATED = "UNAUTHENTICATED"


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers or {},
        params=params or {},
    )


async def me_as(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    body = await gql(client, ME, headers=headers)
    return body


def me_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["data"] is None, body
    return top_error(body)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def user_count(db: TestDB) -> int:
    return int(db.sql("SELECT count(*) FROM users")[0][0])


@pytest.fixture
async def two_accounts(client: httpx.AsyncClient, project: ProjectKeys) -> tuple[Account, Account]:
    jane = await sign_up(client, project.api_key, "jane")
    bob = await sign_up(client, project.api_key, "bob")
    # The sign-up cookies are Secure and the test client speaks http: nothing is sent
    # implicitly, but clear the jar anyway so every credential below is explicit.
    client.cookies.clear()
    return jane, bob


# --------------------------------------------------------------------------- token sources


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (("bearer:jane", "header:bob", "cookie:bob"), "jane"),
        (("header:jane", "cookie:bob"), "jane"),
        (("bearer:bob", "cookie:jane"), "bob"),
        (("cookie:jane",), "jane"),
        (("header:bob",), "bob"),
        (("bearer:bob",), "bob"),
    ],
    ids=[
        "bearer-beats-header-and-cookie",
        "header-beats-cookie",
        "bearer-beats-cookie",
        "cookie-alone",
        "header-alone",
        "bearer-alone",
    ],
)
async def test_token_is_taken_from_bearer_then_x_access_token_then_cookie(
    client: httpx.AsyncClient,
    two_accounts: tuple[Account, Account],
    sources: tuple[str, ...],
    expected: str,
) -> None:
    tokens = {a.username: a.token for a in two_accounts}
    headers: dict[str, str] = {}
    for source in sources:
        kind, _, who = source.partition(":")
        if kind == "bearer":
            headers["Authorization"] = f"Bearer {tokens[who]}"
        elif kind == "header":
            headers["X-Access-Token"] = tokens[who]
        else:
            headers["Cookie"] = f"access_token={tokens[who]}"
    body = await me_as(client, headers)
    assert body["data"]["me"]["username"] == expected


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Authorization": "Bearer not.a.token"}, "INVALID_TOKEN"),
        ({"Authorization": "Basic amFuZTpwdw=="}, "INVALID_TOKEN"),
        ({"X-Access-Token": "garbage"}, "INVALID_TOKEN"),
        ({"Authorization": "Bearer not.a.token", "X-Access-Token": "ok?"}, "INVALID_TOKEN"),
        # An empty bearer presents no token at all, yet it still does not fall back.
        ({"Authorization": "Bearer "}, "MISSING_TOKEN"),
    ],
    ids=["bad-bearer", "basic-auth", "bad-x-access-token", "bad-bearer-and-header", "empty-bearer"],
)
async def test_an_invalid_token_in_a_higher_source_never_falls_back_to_the_cookie(
    client: httpx.AsyncClient,
    two_accounts: tuple[Account, Account],
    headers: dict[str, str],
    reason: str,
) -> None:
    jane, _ = two_accounts
    headers = {k: jane.token if v == "ok?" else v for k, v in headers.items()}
    body = await me_as(client, {**headers, "Cookie": f"access_token={jane.token}"})
    assert me_error(body) == {"code": UNAUTHENTICATED, "reason": reason}


async def test_a_request_without_any_token_is_missing_token(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    for headers in ({}, {"X-API-Key": project.api_key}, {"Cookie": "other=1"}):
        body = await me_as(client, headers)
        assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "MISSING_TOKEN"}


@pytest.mark.parametrize("settings_env", [{"AMEND_COOKIE_NAME": "amend_sid"}], indirect=True)
async def test_the_cookie_source_uses_the_configured_cookie_name(
    client: httpx.AsyncClient, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    body = await me_as(client, {"Cookie": f"access_token={jane.token}"})
    assert me_error(body)["reason"] == "MISSING_TOKEN"
    body = await me_as(client, {"Cookie": f"amend_sid={jane.token}"})
    assert body["data"]["me"]["username"] == "jane"


# --------------------------------------------------------------------------- token validity


async def test_a_token_past_its_exp_is_token_expired(
    client: httpx.AsyncClient, services: Services, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    claims = claims_of(jane.token)
    now = int(time.time())
    expired = services.tokens.issue(
        project_id=claims["aud"],
        unique_id=claims["sub"],
        session_hex=claims["sid"].removeprefix("signin_"),
        iat=now - 7200,
        exp=now - 3600,
    )
    body = await me_as(client, {"Authorization": f"Bearer {expired}"})
    assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "TOKEN_EXPIRED"}
    # The session itself is fine: the original token still works.
    ok = await me_as(client, {"Authorization": f"Bearer {jane.token}"})
    assert ok["data"]["me"]["username"] == "jane"


async def test_a_token_whose_session_expired_is_token_expired(
    client: httpx.AsyncClient, db: TestDB, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    db.sql(
        "UPDATE sessions SET expires_at = ? WHERE id = ?",
        (now_ms() - 1000, jane.session_id.removeprefix("signin_")),
    )
    body = await me_as(client, {"Authorization": f"Bearer {jane.token}"})
    assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "TOKEN_EXPIRED"}


def _forge(token: str, case: str) -> str:
    claims = claims_of(token)
    if case == "wrong-signature":
        return jwt.encode(claims, "another-secret-key-0123456789-abcdefghijkl", algorithm="HS256")
    if case == "tampered-payload":
        header, _payload, signature = token.split(".")
        return ".".join([header, b64({**claims, "sub": "f" * 32}), signature])
    if case == "alg-none":
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    if case == "alg-none-with-signature":
        signature = token.split(".")[2]
        return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}.{signature}"
    if case in {"hs512-same-secret", "hs384-same-secret"}:
        with warnings.catch_warnings():
            # PyJWT warns that the test secret is short for SHA-384/512; that is the point.
            warnings.simplefilter("ignore")
            return jwt.encode(claims, SECRET, algorithm=case[:5].upper())
    if case in {"missing-sid", "missing-sub", "missing-iss", "missing-exp", "missing-aud"}:
        claim = case.removeprefix("missing-")
        return jwt.encode(
            {k: v for k, v in claims.items() if k != claim}, SECRET, algorithm="HS256"
        )
    if case == "wrong-iss":
        return jwt.encode({**claims, "iss": "someone-else"}, SECRET, algorithm="HS256")
    if case == "sid-not-a-session-id":
        return jwt.encode({**claims, "sid": "session-1"}, SECRET, algorithm="HS256")
    if case == "sub-not-hex":
        return jwt.encode({**claims, "sub": "jane"}, SECRET, algorithm="HS256")
    if case == "not-a-jwt":
        return "abc.def"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "wrong-signature",
        "tampered-payload",
        "alg-none",
        "alg-none-with-signature",
        "hs512-same-secret",
        "hs384-same-secret",
        "missing-sid",
        "missing-sub",
        "missing-iss",
        "missing-exp",
        "missing-aud",
        "wrong-iss",
        "sid-not-a-session-id",
        "sub-not-hex",
        "not-a-jwt",
    ],
)
async def test_a_forged_or_malformed_token_is_invalid_token(
    client: httpx.AsyncClient, two_accounts: tuple[Account, Account], case: str
) -> None:
    jane, _ = two_accounts
    forged = _forge(jane.token, case)
    for headers in (
        {"Authorization": f"Bearer {forged}"},
        {"X-Access-Token": forged},
        {"Cookie": f"access_token={forged}"},
    ):
        body = await me_as(client, headers)
        assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "INVALID_TOKEN"}, headers


async def test_a_correctly_signed_token_for_someone_elses_session_is_refused(
    client: httpx.AsyncClient, two_accounts: tuple[Account, Account]
) -> None:
    # Even with the signing key, pointing jane's claims at bob's session is not accepted.
    jane, bob = two_accounts
    claims = {**claims_of(jane.token), "sid": bob.session_id}
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    body = await me_as(client, {"Authorization": f"Bearer {token}"})
    assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "USER_NOT_FOUND"}


async def test_a_valid_token_with_another_projects_api_key_is_invalid_token(
    client: httpx.AsyncClient,
    make_project_fn: Any,
    two_accounts: tuple[Account, Account],
) -> None:
    jane, _ = two_accounts
    other = await make_project_fn("other")
    for key_headers, params in (
        ({"X-API-Key": other.api_key}, {}),
        ({}, {"key": other.api_key}),
    ):
        response = await post(
            client, ME, headers={**jane.auth, **key_headers}, params=params or None
        )
        assert me_error(response.json()) == {"code": UNAUTHENTICATED, "reason": "INVALID_TOKEN"}


async def test_a_valid_token_with_its_own_projects_api_key_works(
    client: httpx.AsyncClient, project: ProjectKeys, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    body = await me_as(client, {**jane.auth, "X-API-Key": project.api_key})
    assert body["data"]["me"]["username"] == "jane"


async def test_a_valid_token_with_an_unknown_api_key_is_refused(
    client: httpx.AsyncClient, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    body = await me_as(client, {**jane.auth, "X-API-Key": "ak_bogus"})
    assert me_error(body) == {"code": "FORBIDDEN", "reason": "INVALID_API_KEY"}


async def test_a_token_whose_session_was_revoked_is_session_revoked(
    client: httpx.AsyncClient, project: ProjectKeys, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    second = (await sign_in(client, project.api_key, "jane"))["data"]["signIn"]
    client.cookies.clear()
    revoked = await gql(client, REVOKE, {"id": jane.session_id}, headers=second_auth(second))
    assert revoked["data"]["revokeSession"] is True
    for headers in (
        jane.auth,
        {"X-Access-Token": jane.token},
        {"Cookie": f"access_token={jane.token}"},
    ):
        for query in (ME, SESSION):
            body = await gql(client, query, headers=headers)
            assert me_error(body) == {"code": UNAUTHENTICATED, "reason": "SESSION_REVOKED"}


def second_auth(payload: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {payload['token']}"}


async def test_a_token_of_a_deleted_user_is_refused(
    client: httpx.AsyncClient, db: TestDB, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    # db.sql enforces foreign keys on both backends (SQLite: PRAGMA foreign_keys = ON).
    db.sql("DELETE FROM users WHERE unique_id = ?", (jane.unique_id,))
    body = await me_as(client, jane.auth)
    # Sessions are deleted with their user (ON DELETE CASCADE), so today this answers
    # SESSION_REVOKED; USER_NOT_FOUND would be as right (same code, same REST status).
    assert me_error(body)["code"] == UNAUTHENTICATED
    assert me_error(body)["reason"] in {"USER_NOT_FOUND", "SESSION_REVOKED"}


# --------------------------------------------------------------------------- origin policy


@pytest.fixture
async def strict(make_project_fn: Any) -> ProjectKeys:
    keys: ProjectKeys = await make_project_fn("strict", origins=[APP], allow_no_origin=False)
    return keys


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        (EVIL, "ORIGIN_NOT_ALLOWED"),
        ("http://app.example.com", "ORIGIN_NOT_ALLOWED"),
        (None, "ORIGIN_REQUIRED"),
    ],
    ids=["unlisted", "other-scheme", "no-origin"],
)
async def test_sign_up_with_a_refused_origin_is_forbidden_and_writes_nothing(
    client: httpx.AsyncClient, strict: ProjectKeys, db: TestDB, origin: str | None, reason: str
) -> None:
    headers = {"X-API-Key": strict.api_key}
    if origin is not None:
        headers["Origin"] = origin
    response = await post(
        client, SIGN_UP, {"input": {"username": "jane", "password": "Zght943!x"}}, headers=headers
    )
    body = response.json()
    assert body["data"] is None
    assert top_error(body) == {"code": "FORBIDDEN", "reason": reason}
    assert "access-control-allow-origin" not in response.headers
    assert user_count(db) == 0


async def test_sign_up_and_me_from_a_listed_origin_work(
    client: httpx.AsyncClient, strict: ProjectKeys
) -> None:
    response = await post(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": "Zght943!x"}},
        headers={"X-API-Key": strict.api_key, "Origin": APP},
    )
    payload = response.json()["data"]["signUp"]
    assert payload["errors"] == []
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in response.headers["vary"].lower()
    client.cookies.clear()

    token = payload["token"]
    body = await me_as(client, {"Authorization": f"Bearer {token}", "Origin": APP})
    assert body["data"]["me"]["username"] == "jane"


@pytest.mark.parametrize(
    ("origin", "reason"),
    [(EVIL, "ORIGIN_NOT_ALLOWED"), (None, "ORIGIN_REQUIRED")],
    ids=["unlisted", "no-origin"],
)
async def test_me_with_only_a_token_applies_the_tokens_project_origin_policy(
    client: httpx.AsyncClient, strict: ProjectKeys, origin: str | None, reason: str
) -> None:
    response = await post(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": "Zght943!x"}},
        headers={"X-API-Key": strict.api_key, "Origin": APP},
    )
    token = response.json()["data"]["signUp"]["token"]
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    if origin is not None:
        headers["Origin"] = origin
    for query in (ME, SESSION):
        body = await gql(client, query, headers=headers)
        assert me_error(body) == {"code": "FORBIDDEN", "reason": reason}


async def test_a_project_without_an_allow_list_accepts_any_origin_and_none(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    for origin in (None, EVIL, APP):
        headers = {"X-API-Key": project.api_key}
        if origin is not None:
            headers["Origin"] = origin
        response = await post(
            client,
            SIGN_UP,
            {"input": {"username": f"u{len(str(origin))}", "password": "Zght943!x"}},
            headers=headers,
        )
        assert response.json()["data"]["signUp"]["errors"] == []
        # Nobody listed the origin: a browser must not be allowed to read the answer.
        assert "access-control-allow-origin" not in response.headers


async def test_a_wildcard_project_accepts_every_origin(
    client: httpx.AsyncClient, make_project_fn: Any
) -> None:
    keys = await make_project_fn("open", origins=["*"], allow_no_origin=False)
    response = await post(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": "Zght943!x"}},
        headers={"X-API-Key": keys.api_key, "Origin": EVIL},
    )
    assert response.json()["data"]["signUp"]["errors"] == []
    assert response.headers["access-control-allow-origin"] == EVIL
    no_origin = await post(
        client,
        SIGN_UP,
        {"input": {"username": "bob", "password": "Zght943!x"}},
        headers={"X-API-Key": keys.api_key},
    )
    assert top_error(no_origin.json()) == {"code": "FORBIDDEN", "reason": "ORIGIN_REQUIRED"}


# --------------------------------------------------------------------------- CORS preflight


async def preflight(
    client: httpx.AsyncClient, origin: str, params: dict[str, str] | None = None
) -> httpx.Response:
    return await client.options(
        "/graphql",
        params=params or {},
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )


async def test_preflight_from_a_listed_origin_is_allowed_with_credentials(
    client: httpx.AsyncClient, strict: ProjectKeys
) -> None:
    response = await preflight(client, APP)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in [v.strip().lower() for v in response.headers["vary"].split(",")]
    assert "POST" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert response.content == b""


@pytest.mark.parametrize("origin", [EVIL, "null", APP + "/", "https://app.example.com:8443"])
async def test_preflight_from_an_unlisted_origin_gets_no_allow_origin(
    client: httpx.AsyncClient, strict: ProjectKeys, origin: str
) -> None:
    response = await preflight(client, origin)
    assert response.status_code < 500
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-credentials" not in response.headers
    assert "origin" in response.headers.get("vary", "").lower()


async def test_preflight_with_a_key_answers_only_that_projects_origins(
    client: httpx.AsyncClient, strict: ProjectKeys, make_project_fn: Any
) -> None:
    other_origin = "https://other.example.com"
    other = await make_project_fn("other", origins=[other_origin])
    # Without a key, an origin listed by any project is answered.
    assert (await preflight(client, other_origin)).headers.get(
        "access-control-allow-origin"
    ) == other_origin
    # With `strict`'s key, only `strict`'s own origins are.
    refused = await preflight(client, other_origin, {"key": strict.api_key})
    assert "access-control-allow-origin" not in refused.headers
    allowed = await preflight(client, APP, {"key": strict.api_key})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == APP
    refused = await preflight(client, APP, {"key": other.api_key})
    assert "access-control-allow-origin" not in refused.headers
    # An unknown key lists nothing.
    unknown = await preflight(client, APP, {"key": "ak_bogus"})
    assert "access-control-allow-origin" not in unknown.headers


async def test_an_actual_request_from_an_origin_listed_elsewhere_is_still_refused(
    client: httpx.AsyncClient, strict: ProjectKeys, make_project_fn: Any, db: TestDB
) -> None:
    # The preflight may pass (another project lists the origin), the request does not.
    other_origin = "https://other.example.com"
    await make_project_fn("other", origins=[other_origin])
    response = await post(
        client,
        SIGN_UP,
        {"input": {"username": "jane", "password": "Zght943!x"}},
        headers={"X-API-Key": strict.api_key, "Origin": other_origin},
    )
    assert top_error(response.json()) == {"code": "FORBIDDEN", "reason": "ORIGIN_NOT_ALLOWED"}
    assert "access-control-allow-origin" not in response.headers
    assert user_count(db) == 0


# --------------------------------------------------------------------------- headers


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


def assert_security_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)


async def test_security_headers_are_on_every_kind_of_response(
    client: httpx.AsyncClient, strict: ProjectKeys, two_accounts: tuple[Account, Account]
) -> None:
    jane, _ = two_accounts
    responses = [
        await post(client, ME, headers=jane.auth),  # success
        await post(client, ME),  # GraphQL error
        await client.post("/graphql", content=b"{", headers={"content-type": "application/json"}),
        await client.get("/graphql"),  # no GraphiQL outside dev mode
        await preflight(client, APP),
        await preflight(client, EVIL),
        await client.get("/healthz"),
        await client.get("/nowhere"),
    ]
    for response in responses:
        assert_security_headers(response)
