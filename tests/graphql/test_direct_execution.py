"""Valid documents run straight through graphql-core (`api.graphql.documents`); everything
else goes through Strawberry's pipeline. Both must answer exactly alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.services import accounts
from tests.conftest import ProjectKeys
from tests.gql import ME, UPDATE_ME, graphql_view, sign_up


async def _both(
    client: httpx.AsyncClient, body: dict[str, Any], headers: dict[str, str]
) -> tuple[httpx.Response, httpx.Response]:
    """The same request, answered directly and (through an extra body key the direct path
    does not take) by Strawberry's pipeline."""
    direct = await client.post("/graphql", json=body, headers=headers)
    full = await client.post("/graphql", json={**body, "extensions": None}, headers=headers)
    return direct, full


def _same(direct: httpx.Response, full: httpx.Response) -> None:
    assert direct.status_code == full.status_code
    assert direct.json() == full.json()
    for name in ("content-type", "retry-after", "cache-control"):
        assert direct.headers.get(name) == full.headers.get(name), name


@pytest.mark.parametrize(
    ("case", "query", "variables"),
    [
        ("me", "{ me { username version } }", None),
        ("me-operation-name", "query A { me { username } } query B { me { email } }", None),
        ("update-me-invalid", UPDATE_ME, {"input": {"firstName": "x" * 500}}),
        ("update-me-empty", UPDATE_ME, {"input": {}}),
        ("variable-of-the-wrong-type", UPDATE_ME, {"input": {"firstName": 5}}),
        ("variable-missing", UPDATE_ME, None),
        ("unknown-input-field", UPDATE_ME, {"input": {"password": "Zght943!x"}}),
        ("unauthenticated", ME, None),
        ("aliases-and-typename", "{ a: me { __typename id } t: __typename }", None),
        (
            "update-me-errors-list",
            "mutation U($i: UpdateMeInput!) { updateMe(input: $i) "
            "{ user { firstName version } errors { code message field } } }",
            {"i": {"firstName": "Ann"}},
        ),
    ],
)
async def test_direct_and_full_pipelines_answer_alike(
    client: httpx.AsyncClient, project: ProjectKeys, case: str, query: str, variables: Any
) -> None:
    account = await sign_up(client, project.api_key)
    headers = {} if case == "unauthenticated" else {"Authorization": f"Bearer {account.token}"}
    body: dict[str, Any] = {"query": query, "variables": variables}
    if case == "me-operation-name":
        body["operationName"] = "B"
    direct, full = await _both(client, body, headers)
    _same(direct, full)
    assert (query, body.get("operationName")) in graphql_view(client).documents._valid


async def test_unexpected_errors_are_masked_alike(
    client: httpx.AsyncClient, project: ProjectKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(client, project.api_key)

    async def broken(_ctx: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(accounts, "me", broken)
    direct, full = await _both(
        client, {"query": "{ me { id } }"}, {"Authorization": f"Bearer {account.token}"}
    )
    _same(direct, full)
    assert direct.json()["errors"][0]["message"] == "Unexpected error."
    assert "secret" not in direct.text


async def test_sign_in_sets_the_cookie_on_the_direct_path(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)
    query = "mutation($i: SignInInput!) { signIn(input: $i) { token errors { code } } }"
    r = await client.post(
        "/graphql",
        json={"query": query, "variables": {"i": {"identifier": "jane", "password": "Zght943!x"}}},
        headers={"X-API-Key": project.api_key},
    )
    assert r.status_code == 200
    assert r.json()["data"]["signIn"]["errors"] == []
    assert "access_token=" in r.headers["set-cookie"]
    assert ("mutation($i: SignInInput!) { signIn(input: $i) { token errors { code } } }", None) in (
        graphql_view(client).documents._valid
    )


@pytest.mark.parametrize(
    "query",
    [
        "{ me { nope } }",  # invalid: never cached, Strawberry answers
        "{ me ",  # does not parse
        "subscription { meUpdated { id } }",  # not over POST
    ],
)
async def test_invalid_documents_are_not_remembered(
    client: httpx.AsyncClient, project: ProjectKeys, query: str
) -> None:
    account = await sign_up(client, project.api_key)
    r = await client.post(
        "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {account.token}"}
    )
    assert r.json()["errors"]
    assert not any(q == query for q, _ in graphql_view(client).documents._valid)


async def test_streaming_accept_headers_go_to_the_full_pipeline(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    query = "{ me { username } }"
    r = await client.post(
        "/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {account.token}", "Accept": "text/event-stream"},
    )
    assert r.status_code in (200, 400, 406)
    assert not any(q == query for q, _ in graphql_view(client).documents._valid)


async def test_the_document_cache_is_bounded(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    account = await sign_up(client, project.api_key)
    documents = graphql_view(client).documents
    for i in range(documents._size + 10):
        r = await client.post(
            "/graphql",
            json={"query": f"query Q{i} {{ me {{ username }} }}"},
            headers={"Authorization": f"Bearer {account.token}"},
        )
        assert r.json()["data"]["me"]["username"] == "jane"
    assert len(documents._valid) == documents._size
