"""GraphQL over HTTP (SPEC §6 "Protocols"): the answer's media type follows `Accept`, and a
request that fails before execution has no `data` entry (and a 400 under
`application/graphql-response+json`), on the direct path and Strawberry's alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ProjectKeys
from tests.gql import ME, Account, sign_up

GRAPHQL_RESPONSE = "application/graphql-response+json"
SET_NAME = "mutation($i: UpdateMeInput!) { updateMe(input: $i) { user { firstName } } }"


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    account = await sign_up(client, project.api_key, "jane")
    client.cookies.clear()
    return account


async def _post(
    client: httpx.AsyncClient, accept: str | None, body: dict[str, Any], **headers: str
) -> httpx.Response:
    if accept is not None:
        headers["Accept"] = accept
    return await client.post("/graphql", json=body, headers=headers)


def _media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json", GRAPHQL_RESPONSE),
        (f"application/json;q=0.9, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE};q=0.5", "application/json"),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (None, "application/json"),
    ],
)
async def test_the_answer_takes_the_media_type_the_client_prefers(
    client: httpx.AsyncClient, jane: Account, accept: str | None, expected: str
) -> None:
    # Twice: the first run goes through Strawberry's pipeline, the second the direct path.
    for _ in range(2):
        r = await _post(client, accept, {"query": ME}, **jane.auth)
        assert r.status_code == 200
        assert _media_type(r) == expected
        assert r.json()["data"]["me"]["username"] == "jane"


BEFORE_EXECUTION = [
    pytest.param({"query": "{ me { id "}, id="syntax-error"),
    pytest.param({"query": "{ me { nope } }"}, id="validation-error"),
    pytest.param({"query": SET_NAME, "variables": {"i": {"firstName": 5}}}, id="bad-variable"),
    pytest.param({"query": SET_NAME, "variables": {}}, id="missing-variable"),
]


@pytest.mark.parametrize("body", BEFORE_EXECUTION)
async def test_a_request_failing_before_execution_answers_400_under_graphql_response_json(
    client: httpx.AsyncClient, jane: Account, body: dict[str, Any]
) -> None:
    # A valid document is run once first, so the variable cases also take the direct path.
    await _post(client, None, {"query": SET_NAME, "variables": {"i": {}}}, **jane.auth)
    r = await _post(client, GRAPHQL_RESPONSE, body, **jane.auth)
    assert r.status_code == 400
    assert _media_type(r) == GRAPHQL_RESPONSE
    answer = r.json()
    assert "data" not in answer
    assert answer["errors"]


@pytest.mark.parametrize("body", BEFORE_EXECUTION)
@pytest.mark.parametrize("accept", ["application/json", None])
async def test_a_request_failing_before_execution_has_no_data_entry_under_json(
    client: httpx.AsyncClient, jane: Account, body: dict[str, Any], accept: str | None
) -> None:
    await _post(client, None, {"query": SET_NAME, "variables": {"i": {}}}, **jane.auth)
    r = await _post(client, accept, body, **jane.auth)
    assert r.status_code == 200
    assert _media_type(r) == "application/json"
    answer = r.json()
    assert "data" not in answer
    assert answer["errors"]


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_an_execution_error_keeps_its_data_entry_and_200(
    client: httpx.AsyncClient, accept: str
) -> None:
    # `me` is non-null: its failure nulls `data`, which execution did produce.
    for _ in range(2):
        r = await _post(client, accept, {"query": ME})
        assert r.status_code == 200
        answer = r.json()
        assert answer["data"] is None
        assert answer["errors"][0]["path"] == ["me"]
        assert answer["errors"][0]["extensions"]["reason"] == "MISSING_TOKEN"


async def test_transport_errors_keep_their_status_under_graphql_response_json(
    client: httpx.AsyncClient,
) -> None:
    r = await _post(client, GRAPHQL_RESPONSE, {"notquery": "{ __typename }"})
    assert r.status_code == 400
    assert _media_type(r) == GRAPHQL_RESPONSE
    assert "data" not in r.json()
