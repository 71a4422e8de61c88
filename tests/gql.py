"""A tiny GraphQL client over httpx, and the operations the tests use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from api.graphql.view import AmendGraphQL
from tests.conftest import PASSWORD
from tests.db import TestDB


async def gql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=headers or {},
        params=params or {},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


USER_FIELDS = """
  id uniqueId endpoint username email firstName lastName phoneNumber imageUrl
  twoFactorEnabled emailVerified phoneVerified data version createdAt updatedAt
"""

SIGN_UP = f"""
mutation($input: SignUpInput!) {{
  signUp(input: $input) {{
    token user {{ {USER_FIELDS} }} session {{ id userId createdAt expiresAt current }}
    errors {{ code message field }}
  }}
}}"""

SIGN_IN = f"""
mutation($input: SignInInput!) {{
  signIn(input: $input) {{
    token user {{ {USER_FIELDS} }} session {{ id userId current }}
    errors {{ code message field }}
  }}
}}"""

ME = f"query {{ me {{ {USER_FIELDS} }} }}"

UPDATE_ME = f"""
mutation($input: UpdateMeInput!) {{
  updateMe(input: $input) {{
    user {{ {USER_FIELDS} }}
    session {{
      signins {{ id userId current }} activeSignin {{ id }}
      signinAttempts {{ id succeeded }} signupAttempts {{ id }}
    }}
    errors {{ code message field }}
  }}
}}"""

UPDATE_CREDENTIALS = f"""
mutation($input: UpdateCredentialsInput!) {{
  updateCredentials(input: $input) {{
    user {{ {USER_FIELDS} }} reauthenticationRequired pendingEmail
    errors {{ code message field }}
  }}
}}"""

UPDATE_USER = """
mutation($endpoint: String!, $uniqueId: String!, $data: JSON!, $strategy: UpdateStrategy,
         $expectedVersion: Int, $dryRun: Boolean) {
  updateUser(endpoint: $endpoint, uniqueId: $uniqueId, data: $data, strategy: $strategy,
             expectedVersion: $expectedVersion, dryRun: $dryRun) {
    record { uniqueId data version createdAt updatedAt }
    errors { code message field }
  }
}"""

RECORD = """
query($endpoint: String!, $uniqueId: String!) {
  record(endpoint: $endpoint, uniqueId: $uniqueId) { uniqueId data version createdAt updatedAt }
}"""

SESSION = """
query { session {
  signinAttempts { id identifier succeeded reason createdAt }
  signins { id userId createdAt expiresAt current }
  signupAttempts { id identifier succeeded createdAt }
  activeSignin { id userId current }
} }"""

SIGN_OUT = "mutation { signOut }"
REVOKE = "mutation($id: ID!) { revokeSession(id: $id) }"


@dataclass
class Account:
    """A signed-up user and the token of its first session."""

    username: str
    password: str
    token: str
    unique_id: str
    session_id: str
    user: dict[str, Any] = field(default_factory=dict)

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_up(
    client: httpx.AsyncClient,
    api_key: str,
    username: str = "jane",
    password: str = PASSWORD,
    **extra: Any,
) -> Account:
    body = await gql(
        client,
        SIGN_UP,
        {"input": {"username": username, "password": password, **extra}},
        headers={"X-API-Key": api_key},
    )
    payload = body["data"]["signUp"]
    assert payload["errors"] == [], payload
    return Account(
        username=username,
        password=password,
        token=payload["token"],
        unique_id=payload["user"]["uniqueId"],
        session_id=payload["session"]["id"],
        user=payload["user"],
    )


async def sign_in(
    client: httpx.AsyncClient, api_key: str, identifier: str, password: str = PASSWORD
) -> dict[str, Any]:
    body = await gql(
        client,
        SIGN_IN,
        {"input": {"identifier": identifier, "password": password}},
        headers={"X-API-Key": api_key},
    )
    return body


def top_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body.get("errors"), body
    ext = body["errors"][0].get("extensions") or {}
    return {"code": ext.get("code"), "reason": ext.get("reason")}


# --- Helpers for the update-route tests (record read-back, direct database tweaks). ---


def master(project_master_key: str) -> dict[str, str]:
    """Headers that authenticate with the project's master key."""
    return {"X-Master-Key": project_master_key}


async def read_record(
    client: httpx.AsyncClient, master_key: str, unique_id: str, endpoint: str = "users"
) -> dict[str, Any]:
    """The stored record, read back through `record` with the master key."""
    body = await gql(
        client, RECORD, {"endpoint": endpoint, "uniqueId": unique_id}, headers=master(master_key)
    )
    assert "errors" not in body, body
    record = body["data"]["record"]
    assert isinstance(record, dict)
    return record


async def read_me(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    """The caller's user, read back through `me` (the token must still be valid)."""
    body = await gql(client, ME, headers={"Authorization": f"Bearer {token}"})
    assert "errors" not in body, body
    me = body["data"]["me"]
    assert isinstance(me, dict)
    return me


def sql(db: TestDB, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the test's database (to age sessions, set flags, read audit)."""
    return db.sql(statement, params)


def age_sessions(db: TestDB, seconds: int = 3600) -> None:
    """Make every session look signed in `seconds` earlier (outside the reauth window)."""
    sql(db, "UPDATE sessions SET created_at = created_at - ?", (seconds * 1000,))


def cookie_cleared(response: httpx.Response, cookie_name: str = "access_token") -> bool:
    """True when the response deletes the session cookie (Max-Age=0 or an expiry in the past)."""
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() != cookie_name:
            continue
        attrs: dict[str, str] = {}
        for part in rest.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            attrs[key.lower()] = value
        if attrs.get("max-age") == "0":
            return True
        if "expires" in attrs:
            expires = parsedate_to_datetime(attrs["expires"])
            if expires <= datetime.now(UTC):
                return True
    return False


def error_codes(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    """The (code, field) pairs of a payload's `errors`."""
    return [(e["code"], e["field"]) for e in payload["errors"]]


def graphql_view(client: httpx.AsyncClient) -> AmendGraphQL:
    """The GraphQL endpoint mounted in the app an ASGI-transport client talks to."""
    app: Any = client._transport.app  # type: ignore[attr-defined]
    for route in app.routes:
        if isinstance(getattr(route, "app", None), AmendGraphQL):
            return route.app  # type: ignore[no-any-return]
    raise AssertionError("no GraphQL view mounted")
