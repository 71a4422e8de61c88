from __future__ import annotations

import httpx

from tests.conftest import ProjectKeys
from tests.gql import ME, UPDATE_ME, gql, sign_up


async def test_sign_up_then_update_me(client: httpx.AsyncClient, project: ProjectKeys) -> None:
    account = await sign_up(client, project.api_key, email="jane@example.com")
    body = await gql(client, ME, headers=account.auth)
    assert body["data"]["me"]["username"] == "jane"
    body = await gql(
        client, UPDATE_ME, {"input": {"firstName": "Jane", "data": {"a": 1}}}, headers=account.auth
    )
    payload = body["data"]["updateMe"]
    assert payload["errors"] == []
    assert payload["user"]["firstName"] == "Jane"
    assert payload["user"]["data"] == {"a": 1}
    assert payload["user"]["version"] == 2
