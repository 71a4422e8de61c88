"""The per-request auth check reads the session's row every time: whatever changed in it since
the last request (through Amend or directly in the database) is what the next request sees,
although the models built from an unchanged row are reused."""

from __future__ import annotations

import httpx

from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import ME, gql, read_me, sign_in, sign_up, top_error


async def test_a_change_made_in_the_database_is_seen_by_the_next_request(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key, firstName="Ada")
    assert (await read_me(client, account.token))["firstName"] == "Ada"
    assert (await read_me(client, account.token))["firstName"] == "Ada"
    # The same version: only the values say the row changed.
    db.sql("UPDATE users SET first_name = ?, data = ?", ("Grace", '{"team": "blue"}'))
    me = await read_me(client, account.token)
    assert (me["firstName"], me["data"], me["version"]) == ("Grace", {"team": "blue"}, 1)


async def test_a_session_revoked_in_the_database_is_refused_at_once(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    await read_me(client, account.token)
    db.sql("UPDATE sessions SET revoked_at = ?", (1,))
    body = await gql(client, ME, headers=account.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}


async def test_a_deleted_session_is_refused_at_once(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    await read_me(client, account.token)
    db.sql("DELETE FROM sessions")
    body = await gql(client, ME, headers=account.auth)
    assert top_error(body) == {"code": "UNAUTHENTICATED", "reason": "SESSION_REVOKED"}


async def test_two_sessions_of_one_user_each_see_the_current_row(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key, firstName="Ada")
    second = (await sign_in(client, project.api_key, account.username))["data"]["signIn"]
    other = second["token"]
    assert (await read_me(client, account.token))["firstName"] == "Ada"
    assert (await read_me(client, other))["firstName"] == "Ada"
    db.sql("UPDATE users SET first_name = ?", ("Grace",))
    assert (await read_me(client, other))["firstName"] == "Grace"
    assert (await read_me(client, account.token))["firstName"] == "Grace"
