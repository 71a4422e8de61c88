"""One store, one auth context, one engine: a change through any route is visible through every
other route (GraphQL, §7.1 record API, §7.2 credentials API, §7.3 profile API), and every route
enforces the same sessions, password policy and versions (SPEC §4, §5, §6, §7, §9).
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import (
    ME,
    REVOKE,
    SIGN_OUT,
    UPDATE_CREDENTIALS,
    UPDATE_ME,
    UPDATE_USER,
    Account,
    gql,
    read_me,
    read_record,
    sign_in,
    sign_up,
    top_error,
)

EMAIL = "jane@example.com"
NEW_EMAIL = "jane.new@example.com"
NEW_PASSWORD = "N3wSecret42x"
AUDIT = "query { auditLog { edges { node { action fields actor } } } }"


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL, firstName="Jane")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- §7.1 ------------------------------------------------------------------------------------


async def ce_get(
    client: httpx.AsyncClient, project: ProjectKeys, unique_id: str, token: str
) -> httpx.Response:
    return await client.get(
        "/1/ce/users",
        params={"key": project.api_key, "uniqueId": unique_id},
        headers=bearer(token),
    )


async def ce_put(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    unique_id: str,
    token: str,
    body: Any,
    *,
    strategy: str = "merge",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await client.put(
        "/1/ce/users",
        params={"key": project.api_key, "uniqueId": unique_id, "strategy": strategy},
        json=body,
        headers={**bearer(token), **(headers or {})},
    )


async def ce_login(
    client: httpx.AsyncClient, project: ProjectKeys, username: str, password: str
) -> httpx.Response:
    return await client.post(
        "/1/ce/users/login",
        params={"key": project.api_key},
        json={"username": username, "password": password},
    )


def ce_error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"status", "error", "message"}, body
    assert body["status"] == response.status_code
    return response.status_code, body["error"]


# --- §7.2 ------------------------------------------------------------------------------------


async def v1_update(client: httpx.AsyncClient, token: str, body: Any) -> httpx.Response:
    return await client.put("/api/user/v1/update", json=body, headers={"X-Access-Token": token})


async def v1_login(
    client: httpx.AsyncClient, project: ProjectKeys, eml: str, pwd: str
) -> httpx.Response:
    return await client.post(
        "/api/user/v1/login", params={"key": project.api_key}, json={"eml": eml, "pwd": pwd}
    )


def v1_code(response: httpx.Response) -> int:
    body = response.json()
    assert set(body) == {"code", "message", "result"}, body
    assert response.status_code == (200 if body["code"] == 0 else body["code"] // 100)
    code = body["code"]
    assert isinstance(code, int)
    return code


# --- §7.3 ------------------------------------------------------------------------------------


async def me_get(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/me", headers=bearer(token))


async def me_patch(
    client: httpx.AsyncClient, token: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.patch("/me", json=body, headers={**bearer(token), **(headers or {})})


def me_error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["data"] is None and body["session"] is None, body
    assert body["status"] == response.status_code
    return response.status_code, body["errors"][0]["code"]


# --- GraphQL ---------------------------------------------------------------------------------


async def gql_reason(client: httpx.AsyncClient, token: str) -> str | None:
    body = await gql(client, ME, headers=bearer(token))
    return top_error(body)["reason"] if body.get("errors") else None


async def gql_sign_in_ok(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str, password: str
) -> str | None:
    body = await sign_in(client, project.api_key, identifier, password)
    payload = body["data"]["signIn"]
    if payload["errors"]:
        assert [e["code"] for e in payload["errors"]] == ["INVALID_CREDENTIALS"], payload
        return None
    token = payload["token"]
    assert isinstance(token, str)
    return token


# --------------------------------------------------------------------------------------------
# Changes are visible everywhere
# --------------------------------------------------------------------------------------------


async def test_patch_me_is_visible_in_graphql_me_and_the_record_api(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await me_patch(
        client, jane.token, {"username": "janesmith", "last_name": "Smith", "phone_number": None}
    )
    assert response.status_code == 200, response.text
    me = await read_me(client, jane.token)
    assert (me["username"], me["firstName"], me["lastName"], me["version"]) == (
        "janesmith",
        "Jane",
        "Smith",
        2,
    )
    record = await ce_get(client, project, jane.unique_id, jane.token)
    assert record.status_code == 200
    assert record.json()["data"] == {"username": "janesmith"}
    assert record.headers["etag"] == response.headers["etag"] == '"2"'
    assert record.json()["updatedAt"] == me["updatedAt"]
    # The new username signs in on the record API and on GraphQL.
    assert (await ce_login(client, project, "janesmith", PASSWORD)).status_code == 200
    assert await gql_sign_in_ok(client, project, "JaneSmith", PASSWORD)


async def test_graphql_update_me_is_visible_in_get_me(
    client: httpx.AsyncClient, jane: Account
) -> None:
    change = {
        "firstName": "Janet",
        "lastName": "Smith",
        "username": "janet",
        "phoneNumber": "+14155552671",
        "imageUrl": "https://cdn.example.com/a.png",
    }
    body = await gql(client, UPDATE_ME, {"input": change}, headers=jane.auth)
    payload = body["data"]["updateMe"]
    assert payload["errors"] == []
    user = payload["user"]
    response = await me_get(client, jane.token)
    assert response.status_code == 200
    data = response.json()["data"]
    assert {
        "first_name": data["first_name"],
        "last_name": data["last_name"],
        "username": data["username"],
        "phone_number": data["phone_number"],
        "image_url": data["image_url"],
    } == {
        "first_name": "Janet",
        "last_name": "Smith",
        "username": "janet",
        "phone_number": "+14155552671",
        "image_url": "https://cdn.example.com/a.png",
    }
    assert data["id"] == user["id"]
    assert data["updated_at"] == user["updatedAt"][:19] + "Z"
    assert response.headers["etag"] == f'"{user["version"]}"'


async def test_record_api_merge_is_visible_in_graphql_record_and_get_me(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    response = await ce_put(
        client, project, jane.unique_id, jane.token, {"username": "jsmith", "plan": {"tier": 2}}
    )
    assert response.status_code == 200, response.text
    record = await read_record(client, project.master_key, jane.unique_id)
    assert record["data"] == {"username": "jsmith", "plan": {"tier": 2}}
    assert record["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert record["updatedAt"] == response.json()["updatedAt"]
    me = await me_get(client, jane.token)
    assert me.json()["data"]["username"] == "jsmith"
    assert me.headers["etag"] == '"2"'
    # Custom data never touches account columns: the profile keeps its own fields.
    assert me.json()["data"]["first_name"] == "Jane"
    assert (await read_me(client, jane.token))["data"] == {"plan": {"tier": 2}}


async def test_graphql_update_user_is_visible_in_the_record_api(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    body = await gql(
        client,
        UPDATE_USER,
        {
            "endpoint": "users",
            "uniqueId": jane.unique_id,
            # FORCE replaces the document: the same password keeps it (SPEC §5).
            "data": {"username": "jane", "password": PASSWORD, "k": [1, 2]},
            "strategy": "FORCE",
        },
        headers=jane.auth,
    )
    record = body["data"]["updateUser"]["record"]
    assert body["data"]["updateUser"]["errors"] == []
    response = await ce_get(client, project, jane.unique_id, jane.token)
    assert response.status_code == 200
    assert response.json() == {
        "uniqueId": jane.unique_id,
        "data": {"username": "jane", "k": [1, 2]},
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
    }
    assert response.headers["etag"] == f'"{record["version"]}"' == '"2"'
    # GET /me and the record API agree on the version.
    assert (await me_get(client, jane.token)).headers["etag"] == '"2"'


async def test_email_changed_through_user_v1_is_visible_in_graphql_and_get_me(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    assert v1_code(await v1_update(client, jane.token, {"eml": NEW_EMAIL})) == 0
    token = await gql_sign_in_ok(client, project, NEW_EMAIL, PASSWORD)
    assert token is not None
    me = await read_me(client, token)
    assert (me["email"], me["emailVerified"], me["version"]) == (NEW_EMAIL, False, 2)
    data = (await me_get(client, token)).json()["data"]
    assert (data["email"], data["email_verified"]) == (NEW_EMAIL, False)
    # The record document has no email: a custom `email` field is not the account email.
    assert "email" not in (await ce_get(client, project, jane.unique_id, token)).json()["data"]


# --------------------------------------------------------------------------------------------
# Sessions: one revocation, every route
# --------------------------------------------------------------------------------------------


async def refusals(
    client: httpx.AsyncClient, project: ProjectKeys, account: Account, token: str
) -> dict[str, Any]:
    """What every route answers for `token`."""
    return {
        "graphql": await gql_reason(client, token),
        "ce_get": ce_error(await ce_get(client, project, account.unique_id, token)),
        "ce_put": ce_error(await ce_put(client, project, account.unique_id, token, {"k": 1})),
        "v1_update": v1_code(await v1_update(client, token, {"pwd": "An0therOne9"})),
        "me_get": me_error(await me_get(client, token)),
        "me_patch": me_error(await me_patch(client, token, {"first_name": "Mallory"})),
    }


REVOKED = {
    "graphql": "SESSION_REVOKED",
    "ce_get": (401, "SESSION_REVOKED"),
    "ce_put": (401, "SESSION_REVOKED"),
    "v1_update": 40102,
    "me_get": (401, "SESSION_REVOKED"),
    "me_patch": (401, "SESSION_REVOKED"),
}


async def change_password_via(
    route: str, client: httpx.AsyncClient, project: ProjectKeys, account: Account, token: str
) -> None:
    if route == "user_v1":
        response = await v1_update(client, token, {"pwd": NEW_PASSWORD})
        assert v1_code(response) == 0
    elif route == "graphql_update_credentials":
        body = await gql(
            client, UPDATE_CREDENTIALS, {"input": {"password": NEW_PASSWORD}}, headers=bearer(token)
        )
        assert body["data"]["updateCredentials"]["errors"] == []
    elif route == "graphql_update_user":
        body = await gql(
            client,
            UPDATE_USER,
            {
                "endpoint": "users",
                "uniqueId": account.unique_id,
                "data": {"password": NEW_PASSWORD},
                "strategy": "MERGE",
            },
            headers=bearer(token),
        )
        assert body["data"]["updateUser"]["errors"] == []
    else:
        response = await ce_put(
            client, project, account.unique_id, token, {"password": NEW_PASSWORD}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "route",
    [
        pytest.param("user_v1", id="changed_through_user_v1"),
        pytest.param("graphql_update_credentials", id="changed_through_graphql_credentials"),
        pytest.param("graphql_update_user", id="changed_through_graphql_update_user"),
        pytest.param("record_api", id="changed_through_record_api_put"),
    ],
)
async def test_password_change_invalidates_every_token_on_every_route(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, route: str
) -> None:
    # Tokens from every sign-in route.
    from_graphql = await gql_sign_in_ok(client, project, "jane", PASSWORD)
    ce_response = await ce_login(client, project, "jane", PASSWORD)
    from_ce = ce_response.headers["Authorization"].removeprefix("Bearer ")
    from_v1 = (await v1_login(client, project, EMAIL, PASSWORD)).json()["result"]["token"]
    tokens = [jane.token, from_graphql, from_ce, from_v1]
    assert all(tokens)

    await change_password_via(route, client, project, jane, from_v1)

    for token in tokens:
        assert token is not None
        assert await refusals(client, project, jane, token) == REVOKED
    # The new password signs in through GraphQL, the record API and the credentials API ...
    assert await gql_sign_in_ok(client, project, "jane", NEW_PASSWORD)
    ce_ok = await ce_login(client, project, "jane", NEW_PASSWORD)
    assert ce_ok.status_code == 200
    assert ce_ok.json()["data"] == {"username": "jane"}
    assert v1_code(await v1_login(client, project, EMAIL, NEW_PASSWORD)) == 0
    # ... and the old one through none of them.
    assert await gql_sign_in_ok(client, project, "jane", PASSWORD) is None
    assert ce_error(await ce_login(client, project, "jane", PASSWORD)) == (
        401,
        "INVALID_CREDENTIALS",
    )
    assert v1_code(await v1_login(client, project, EMAIL, PASSWORD)) == 40105
    # The password never appears in the document.
    token = await gql_sign_in_ok(client, project, "jane", NEW_PASSWORD)
    assert token is not None
    record = (await ce_get(client, project, jane.unique_id, token)).json()
    assert "password" not in record["data"]


@pytest.mark.parametrize("how", ["sign_out", "revoke_session_from_another", "revoke_own"])
async def test_session_revoked_through_graphql_is_refused_by_every_rest_route(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, how: str
) -> None:
    other = await gql_sign_in_ok(client, project, "jane", PASSWORD)
    assert other is not None
    if how == "sign_out":
        body = await gql(client, SIGN_OUT, headers=jane.auth)
        assert body["data"] == {"signOut": True}
    elif how == "revoke_own":
        body = await gql(client, REVOKE, {"id": jane.session_id}, headers=jane.auth)
        assert body["data"] == {"revokeSession": True}
    else:
        body = await gql(client, REVOKE, {"id": jane.session_id}, headers=bearer(other))
        assert body["data"] == {"revokeSession": True}

    assert await refusals(client, project, jane, jane.token) == REVOKED
    # Nothing was written by the refused requests, and the other session still works on every
    # route.
    record = await read_record(client, project.master_key, jane.unique_id)
    assert (record["version"], record["data"]) == (1, {"username": "jane"})
    assert await gql_reason(client, other) is None
    assert (await ce_get(client, project, jane.unique_id, other)).status_code == 200
    assert (await me_get(client, other)).status_code == 200
    signins = (await me_get(client, other)).json()["session"]["signins"]
    assert jane.session_id not in [s["id"] for s in signins]


async def test_session_revoked_through_rest_is_refused_by_graphql(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    # A §7.2 change revokes the GraphQL session; GraphQL answers UNAUTHENTICATED at once.
    assert v1_code(await v1_update(client, jane.token, {"eml": NEW_EMAIL})) == 0
    body = await gql(client, UPDATE_ME, {"input": {"firstName": "X"}}, headers=jane.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}


# --------------------------------------------------------------------------------------------
# One password policy
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    [
        pytest.param("abc1", id="too_short"),
        pytest.param("a1" * 16, id="too_long"),
        pytest.param("abcdefgh", id="no_digit"),
        pytest.param("12345678", id="no_letter"),
        pytest.param("password1", id="common"),
        pytest.param("JaneDoe77", id="equal_to_username"),
        pytest.param("janedoe77@example.com", id="equal_to_email"),
    ],
)
async def test_same_weak_password_is_refused_by_every_route(
    client: httpx.AsyncClient, project: ProjectKeys, weak: str
) -> None:
    account = await sign_up(client, project.api_key, "janedoe77", email="janedoe77@example.com")
    body = await gql(
        client, UPDATE_CREDENTIALS, {"input": {"password": weak}}, headers=account.auth
    )
    assert [e["code"] for e in body["data"]["updateCredentials"]["errors"]] == ["PASSWORD_POLICY"]
    assert v1_code(await v1_update(client, account.token, {"pwd": weak})) == 40002
    response = await ce_put(client, project, account.unique_id, account.token, {"password": weak})
    assert ce_error(response) == (400, "PASSWORD_POLICY")
    body = await gql(
        client,
        UPDATE_USER,
        {
            "endpoint": "users",
            "uniqueId": account.unique_id,
            "data": {"password": weak},
            "strategy": "MERGE",
        },
        headers=account.auth,
    )
    assert [e["code"] for e in body["data"]["updateUser"]["errors"]] == ["PASSWORD_POLICY"]
    # Nothing changed anywhere: same version, the session alive, the old password signs in.
    assert (await read_me(client, account.token))["version"] == 1
    assert await gql_sign_in_ok(client, project, "janedoe77", PASSWORD)


# --------------------------------------------------------------------------------------------
# One version
# --------------------------------------------------------------------------------------------


async def graphql_change(
    how: str, client: httpx.AsyncClient, account: Account, expected_version: int | None = None
) -> dict[str, Any]:
    if how == "update_me":
        body = await gql(
            client,
            UPDATE_ME,
            {"input": {"lastName": "Smith", "expectedVersion": expected_version}},
            headers=account.auth,
        )
        payload = body["data"]["updateMe"]
    else:
        body = await gql(
            client,
            UPDATE_USER,
            {
                "endpoint": "users",
                "uniqueId": account.unique_id,
                "data": {"k": 1},
                "strategy": "MERGE",
                "expectedVersion": expected_version,
            },
            headers=account.auth,
        )
        payload = body["data"]["updateUser"]
    assert isinstance(payload, dict)
    return payload


@pytest.mark.parametrize("how", ["update_me", "update_user"])
async def test_graphql_update_makes_a_rest_if_match_stale(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, how: str
) -> None:
    etag = (await me_get(client, jane.token)).headers["etag"]
    assert etag == (await ce_get(client, project, jane.unique_id, jane.token)).headers["etag"]
    assert etag == '"1"'
    assert (await graphql_change(how, client, jane))["errors"] == []
    before = await read_me(client, jane.token)
    assert before["version"] == 2

    stale = {"If-Match": etag}
    response = await ce_put(client, project, jane.unique_id, jane.token, {"x": 1}, headers=stale)
    assert ce_error(response) == (412, "VERSION_CONFLICT")
    response = await me_patch(client, jane.token, {"first_name": "Mallory"}, headers=stale)
    assert me_error(response) == (412, "VERSION_CONFLICT")
    assert await read_me(client, jane.token) == before

    fresh = {"If-Match": '"2"'}
    response = await ce_put(client, project, jane.unique_id, jane.token, {"x": 1}, headers=fresh)
    assert response.status_code == 200
    assert response.headers["etag"] == '"3"'
    response = await me_patch(
        client, jane.token, {"first_name": "Janet"}, headers={"If-Match": '"3"'}
    )
    assert response.status_code == 200
    assert response.headers["etag"] == '"4"'


@pytest.mark.parametrize("how", ["update_me", "update_user"])
async def test_rest_update_makes_a_graphql_expected_version_stale(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, how: str
) -> None:
    assert (await me_patch(client, jane.token, {"first_name": "Janet"})).status_code == 200
    response = await ce_put(client, project, jane.unique_id, jane.token, {"x": 1})
    assert response.headers["etag"] == '"3"'
    before = await read_me(client, jane.token)
    payload = await graphql_change(how, client, jane, expected_version=1)
    assert [e["code"] for e in payload["errors"]] == ["VERSION_CONFLICT"]
    assert await read_me(client, jane.token) == before
    assert (await graphql_change(how, client, jane, expected_version=3))["errors"] == []


async def test_concurrent_rest_and_graphql_updates_with_one_version_let_one_through(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account
) -> None:
    results = await asyncio.gather(
        me_patch(client, jane.token, {"first_name": "Rest"}, headers={"If-Match": '"1"'}),
        graphql_change("update_me", client, jane, expected_version=1),
        ce_put(client, project, jane.unique_id, jane.token, {"x": 1}, headers={"If-Match": '"1"'}),
        graphql_change("update_user", client, jane, expected_version=1),
    )
    me_response, gql_me, ce_response, gql_user = results
    outcomes = [
        me_response.status_code == 200,
        gql_me["errors"] == [],
        ce_response.status_code == 200,
        gql_user["errors"] == [],
    ]
    assert outcomes.count(True) == 1, results
    assert me_response.status_code in (200, 412)
    assert ce_response.status_code in (200, 412)
    for payload in (gql_me, gql_user):
        assert [e["code"] for e in payload["errors"]] in ([], ["VERSION_CONFLICT"])
    assert (await read_me(client, jane.token))["version"] == 2


# --------------------------------------------------------------------------------------------
# One audit log
# --------------------------------------------------------------------------------------------


async def test_rest_changes_appear_in_the_graphql_audit_log(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    assert (await me_patch(client, jane.token, {"first_name": "Janet"})).status_code == 200
    response = await ce_put(client, project, jane.unique_id, jane.token, {"plan": "gold"})
    assert response.status_code == 200
    master_put = await client.put(
        "/1/ce/users",
        params={"key": project.api_key, "uniqueId": jane.unique_id, "strategy": "merge"},
        json={"seats": 3},
        headers={"X-Master-Key": project.master_key},
    )
    assert master_put.status_code == 200, master_put.text
    assert v1_code(await v1_update(client, jane.token, {"pwd": NEW_PASSWORD})) == 0

    token = (await v1_login(client, project, EMAIL, NEW_PASSWORD)).json()["result"]["token"]
    body = await gql(client, AUDIT, headers=bearer(token))
    assert "errors" not in body, body
    nodes = [edge["node"] for edge in body["data"]["auditLog"]["edges"]]
    assert nodes == [
        {"action": "update_credentials", "fields": ["password"], "actor": "user"},
        {"action": "update_user", "fields": ["seats"], "actor": "master"},
        {"action": "update_user", "fields": ["plan"], "actor": "user"},
        {"action": "update_me", "fields": ["first_name"], "actor": "user"},
        {"action": "sign_up", "fields": ["email", "password", "username"], "actor": "user"},
    ]
    # The master key sees the same events for this user.
    master = await gql(
        client,
        "query($u: String) { auditLog(uniqueId: $u) { edges { node { action actor } } } }",
        {"u": jane.unique_id},
        headers={"X-Master-Key": project.master_key},
    )
    assert [e["node"]["action"] for e in master["data"]["auditLog"]["edges"]] == [
        n["action"] for n in nodes
    ]
