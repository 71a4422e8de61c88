from __future__ import annotations

import httpx

from tests.conftest import ProjectKeys
from tests.gql import UPDATE_ME, UPDATE_USER, gql, sign_up, top_error

AUDIT = """
query($first: Int, $after: String, $uniqueId: String) {
  auditLog(first: $first, after: $after, uniqueId: $uniqueId) {
    edges { cursor node { id action fields strategy actor ip at } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def test_audit_log_lists_own_changes_newest_first(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key, email="jane@example.com")
    await gql(client, UPDATE_ME, {"input": {"firstName": "Jane"}}, headers=account.auth)
    await gql(
        client,
        UPDATE_USER,
        {"endpoint": "users", "uniqueId": account.unique_id, "data": {"k": 1}, "strategy": "MERGE"},
        headers={"X-Master-Key": project.master_key},
    )
    body = await gql(client, AUDIT, headers=account.auth)
    edges = body["data"]["auditLog"]["edges"]
    nodes = [e["node"] for e in edges]
    assert [n["action"] for n in nodes] == ["update_user", "update_me", "sign_up"]
    assert nodes[0]["actor"] == "master"
    assert nodes[0]["strategy"] == "MERGE"
    assert nodes[0]["fields"] == ["k"]
    assert nodes[1]["actor"] == "user"
    assert nodes[1]["fields"] == ["first_name"]
    assert nodes[2]["fields"] == ["email", "password", "username"]
    assert nodes[0]["at"].endswith("Z")
    assert body["data"]["auditLog"]["pageInfo"]["hasNextPage"] is False


async def test_audit_log_pages_with_cursors(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    for i in range(4):
        await gql(client, UPDATE_ME, {"input": {"data": {"n": i}}}, headers=account.auth)
    seen: list[str] = []
    after = None
    while True:
        body = await gql(client, AUDIT, {"first": 2, "after": after}, headers=account.auth)
        page = body["data"]["auditLog"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 5
    assert len(set(seen)) == 5
    assert seen == sorted(seen, key=int, reverse=True)


async def test_audit_log_of_another_user_is_forbidden_without_the_master_key(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    jane = await sign_up(client, project.api_key, "jane")
    bob = await sign_up(client, project.api_key, "bob")
    body = await gql(client, AUDIT, {"uniqueId": bob.unique_id}, headers=jane.auth)
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "NOT_OWNER"}
    body = await gql(
        client, AUDIT, {"uniqueId": bob.unique_id}, headers={"X-Master-Key": project.master_key}
    )
    assert [e["node"]["action"] for e in body["data"]["auditLog"]["edges"]] == ["sign_up"]


async def test_audit_log_refuses_a_forged_cursor(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    body = await gql(client, AUDIT, {"after": "not-a-cursor"}, headers=account.auth)
    assert top_error(body)["reason"] == "INVALID_FIELD"
