"""Protections of `POST /graphql` (SPEC §6): no mutations over GET, no batching, depth, alias
and token limits, the body-size limit, introspection and suggestions off, error masking, and
JSON-only request bodies. Each refusal is checked to have executed nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from graphql import get_introspection_query
from graphql.language import Lexer, Source, TokenKind

from api.core.errors import AmendError, Reason
from api.services import accounts
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import ME, SESSION, SIGN_UP, Account, gql, sign_up, top_error


def user_count(db: TestDB) -> int:
    return int(db.sql("SELECT count(*) FROM users")[0][0])


def signup_body(username: str = "jane", **extra: Any) -> dict[str, Any]:
    return {
        "query": SIGN_UP,
        "variables": {"input": {"username": username, "password": PASSWORD, **extra}},
    }


def messages(body: dict[str, Any]) -> list[str]:
    return [e["message"] for e in body.get("errors") or []]


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    account = await sign_up(client, project.api_key, "jane")
    client.cookies.clear()
    return account


async def still_signed_in(client: httpx.AsyncClient, account: Account) -> bool:
    body = await gql(client, ME, headers=account.auth)
    return bool(body.get("data")) and body["data"]["me"]["username"] == account.username


# --------------------------------------------------------------------------- GET


async def test_queries_are_allowed_over_get(client: httpx.AsyncClient, jane: Account) -> None:
    response = await client.get("/graphql", params={"query": ME}, headers=jane.auth)
    assert response.status_code == 200
    assert response.json()["data"]["me"]["username"] == "jane"


async def test_a_mutation_over_get_is_refused_and_writes_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    body = signup_body()
    response = await client.get(
        "/graphql",
        params={"query": body["query"], "variables": orjson.dumps(body["variables"]).decode()},
        headers={"X-API-Key": project.api_key},
    )
    assert response.status_code in (400, 405)
    assert "access_token" not in response.headers.get("set-cookie", "")
    assert user_count(db) == 0


async def test_a_mutation_selected_by_operation_name_over_get_is_refused(
    client: httpx.AsyncClient, jane: Account
) -> None:
    document = "query Q { __typename } mutation M { signOut }"
    response = await client.get(
        "/graphql", params={"query": document, "operationName": "M"}, headers=jane.auth
    )
    assert response.status_code in (400, 405)
    assert await still_signed_in(client, jane)
    # The query of the same document is fine over GET.
    ok = await client.get(
        "/graphql", params={"query": document, "operationName": "Q"}, headers=jane.auth
    )
    assert ok.json() == {"data": {"__typename": "Query"}}


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("size", [1, 2])
async def test_a_batched_list_body_is_refused_and_executes_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, size: int
) -> None:
    batch = [signup_body(f"user{i}") for i in range(size)]
    response = await client.post("/graphql", json=batch, headers={"X-API-Key": project.api_key})
    assert response.status_code == 400
    assert user_count(db) == 0


async def test_a_batched_sign_out_is_refused(client: httpx.AsyncClient, jane: Account) -> None:
    response = await client.post(
        "/graphql", json=[{"query": "mutation { signOut }"}], headers=jane.auth
    )
    assert response.status_code == 400
    assert await still_signed_in(client, jane)


# --------------------------------------------------------------------------- depth


def nested(levels: int) -> str:
    """`{ f0 { f1 { ... leaf } } }` with `levels` nested fields."""
    selection = "leaf"
    for i in reversed(range(levels - 1)):
        selection = f"f{i} {{ {selection} }}"
    return "{ " + selection + " }"


DEPTH_ERROR = "exceeds maximum operation depth of 15"


async def test_a_query_deeper_than_fifteen_is_refused_by_the_depth_limit(
    client: httpx.AsyncClient,
) -> None:
    # The schema itself is shallow (session { signins { id } } is the deepest path), so the
    # limiter is exercised with fields that do not exist: it judges the document's shape
    # before (and independently of) field validation. Nothing executed: no `data` entry.
    deep = await gql(client, nested(17))
    assert "data" not in deep
    assert any(DEPTH_ERROR in m for m in messages(deep)), deep
    at_limit = await gql(client, nested(16))
    assert "data" not in at_limit
    assert not any(DEPTH_ERROR in m for m in messages(at_limit)), at_limit


async def test_the_depth_limit_sees_through_fragments(client: httpx.AsyncClient) -> None:
    document = "query { ...A } fragment A on Query { a { ...B } } fragment B on Query { " + nested(
        16
    ).removeprefix("{ ")
    body = await gql(client, document)
    assert any(DEPTH_ERROR in m for m in messages(body)), body


def deep_introspection(levels: int) -> str:
    """`__schema { types { fields { type { ofType { ofType … } } } } }`."""
    return (
        "{ __schema { types { fields { type { "
        + "ofType { " * levels
        + "name"
        + " }" * (levels + 4)
        + " }"
    )


@pytest.mark.parametrize(
    "settings_env",
    [{}, {"AMEND_INTROSPECTION": "true"}, {"AMEND_DEV": "true"}],
    indirect=True,
    ids=["default", "introspection-on", "dev-mode"],
)
async def test_introspection_fields_count_towards_the_depth_limit(
    client: httpx.AsyncClient,
) -> None:
    body = await gql(client, deep_introspection(40))
    assert "data" not in body
    assert any(DEPTH_ERROR in m for m in messages(body)), body


@pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_INTROSPECTION": "true"}, {"AMEND_DEV": "true"}],
    indirect=True,
    ids=["introspection-on", "dev-mode"],
)
async def test_the_standard_introspection_query_fits_the_depth_limit(
    client: httpx.AsyncClient,
) -> None:
    # What GraphiQL and the code generators send (graphql-js `getIntrospectionQuery`, with
    # every option on): 14 levels deep.
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    )
    body = await gql(client, query)
    assert "errors" not in body, body
    names = {t["name"] for t in body["data"]["__schema"]["types"]}
    assert {"User", "UpdateMeInput", "Subscription"} <= names


# --------------------------------------------------------------------------- aliases


def aliases(count: int) -> str:
    return "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(count)) + " }"


async def test_sixteen_aliases_are_refused(client: httpx.AsyncClient, jane: Account) -> None:
    body = await gql(client, aliases(16), headers=jane.auth)
    assert "data" not in body
    assert messages(body) == ["16 aliases found. Allowed: 15"]


async def test_fifteen_aliases_are_allowed(client: httpx.AsyncClient, jane: Account) -> None:
    body = await gql(client, aliases(15), headers=jane.auth)
    assert "errors" not in body
    assert len(body["data"]) == 15
    assert {v["id"] for v in body["data"].values()} == {f"user_{jane.unique_id}"}


async def test_aliased_sign_ins_count_towards_the_alias_limit(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    # Sixteen sign-in guesses in one request: refused before any of them runs.
    fields = " ".join(
        f'g{i}: signIn(input: {{identifier: "jane", password: "Guess{i:03d}x"}}) {{ token }}'
        for i in range(16)
    )
    body = await gql(client, f"mutation {{ {fields} }}", headers={"X-API-Key": project.api_key})
    assert "data" not in body
    failures = db.sql("SELECT count(*) FROM signin_attempts WHERE NOT succeeded")[0][0]
    assert failures == 0


# --------------------------------------------------------------------------- tokens


def count_tokens(document: str) -> int:
    lexer = Lexer(Source(document))
    count = 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


PADDED = "mutation { updateMe(input: {data: {k: []}}) { errors { code } } }"


def padding_for(total: int) -> int:
    return total - count_tokens(PADDED)


def document_with_tokens(total: int) -> str:
    """A valid `updateMe` document of exactly `total` lexical tokens (the list pads it)."""
    padding = padding_for(total)
    assert padding > 0
    document = PADDED.replace("[]", "[" + " ".join("1" for _ in range(padding)) + "]")
    assert count_tokens(document) == total
    return document


async def test_a_document_over_two_thousand_tokens_is_refused_before_execution(
    client: httpx.AsyncClient, jane: Account
) -> None:
    body = await gql(client, document_with_tokens(2001), headers=jane.auth)
    assert body.get("data") is None
    assert any("2000 tokens" in m for m in messages(body)), body
    me = await gql(client, ME, headers=jane.auth)
    assert me["data"]["me"]["version"] == 1  # the update did not run


async def test_a_document_of_two_thousand_tokens_is_parsed_and_executed(
    client: httpx.AsyncClient, jane: Account
) -> None:
    body = await gql(client, document_with_tokens(2000), headers=jane.auth)
    assert body == {"data": {"updateMe": {"errors": []}}}
    me = await gql(client, ME, headers=jane.auth)
    assert me["data"]["me"]["data"] == {"k": [1] * padding_for(2000)}


# --------------------------------------------------------------------------- body size


SMALL_BODY = {"AMEND_MAX_BODY_BYTES": "2048"}


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    assert error["extensions"]["reason"] == "PAYLOAD_TOO_LARGE"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("settings_env", [SMALL_BODY], indirect=True)
async def test_a_body_over_the_limit_is_refused_with_413_and_writes_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    content = orjson.dumps(signup_body(data={"pad": "x" * 2100}))
    assert len(content) > 2048
    response = await client.post(
        "/graphql",
        content=content,
        headers={"content-type": "application/json", "X-API-Key": project.api_key},
    )
    assert_too_large(response)
    assert user_count(db) == 0


@pytest.mark.parametrize("settings_env", [SMALL_BODY], indirect=True)
async def test_a_chunked_body_over_the_limit_without_content_length_is_refused(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    content = orjson.dumps(signup_body(data={"pad": "x" * 4000}))
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 500):
            sent.append(start)
            yield content[start : start + 500]

    request = client.build_request(
        "POST",
        "/graphql",
        content=chunks(),
        headers={"content-type": "application/json", "X-API-Key": project.api_key},
    )
    assert "content-length" not in request.headers
    assert request.headers.get("transfer-encoding") == "chunked"
    response = await client.send(request)
    assert_too_large(response)
    assert user_count(db) == 0


@pytest.mark.parametrize("settings_env", [SMALL_BODY], indirect=True)
async def test_a_body_just_under_the_limit_is_served(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    base = len(orjson.dumps(signup_body(data={"pad": ""})))
    content = orjson.dumps(signup_body(data={"pad": "x" * (2048 - base)}))
    assert len(content) == 2048
    response = await client.post(
        "/graphql",
        content=content,
        headers={"content-type": "application/json", "X-API-Key": project.api_key},
    )
    assert response.status_code == 200
    assert response.json()["data"]["signUp"]["errors"] == []
    assert user_count(db) == 1


@pytest.mark.parametrize("settings_env", [SMALL_BODY], indirect=True)
async def test_a_chunked_body_under_the_limit_is_served(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    content = orjson.dumps(signup_body())

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(content), 50):
            yield content[start : start + 50]

    response = await client.post(
        "/graphql",
        content=chunks(),
        headers={"content-type": "application/json", "X-API-Key": project.api_key},
    )
    assert response.status_code == 200
    assert response.json()["data"]["signUp"]["errors"] == []
    assert user_count(db) == 1


async def test_the_default_body_limit_is_one_mebibyte(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    content = orjson.dumps(signup_body(data={"pad": "x" * 1_048_576}))
    response = await client.post(
        "/graphql",
        content=content,
        headers={"content-type": "application/json", "X-API-Key": project.api_key},
    )
    assert_too_large(response)
    assert user_count(db) == 0


# --------------------------------------------------------------------------- introspection


INTROSPECTION_QUERIES = [
    "{ __schema { queryType { name } } }",
    '{ __type(name: "User") { name fields { name } } }',
]


@pytest.mark.parametrize("query", INTROSPECTION_QUERIES)
async def test_introspection_is_refused_by_default(client: httpx.AsyncClient, query: str) -> None:
    body = await gql(client, query)
    assert "data" not in body
    assert any("introspection" in m.lower() for m in messages(body)), body


async def test_typename_is_not_introspection(client: httpx.AsyncClient) -> None:
    assert await gql(client, "{ __typename }") == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    "settings_env",
    [{"AMEND_INTROSPECTION": "true"}, {"AMEND_DEV": "true"}],
    indirect=True,
    ids=["introspection-on", "dev-mode"],
)
async def test_introspection_is_allowed_when_enabled(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ __schema { queryType { name } mutationType { name } } }")
    assert body == {
        "data": {"__schema": {"queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"}}}
    }
    body = await gql(client, '{ __type(name: "SignInInput") { inputFields { name } } }')
    names = {f["name"] for f in body["data"]["__type"]["inputFields"]}
    assert names == {"endpoint", "identifier", "password"}


# --------------------------------------------------------------------------- suggestions


SUGGESTION_PROBES = {
    "field": ("{ mee }", {}),
    "sub-field": ("{ me { usernme } }", {}),
    "argument": ('{ record(endpont: "users", uniqueId: "x") { version } }', {}),
    "input-field": (
        'mutation { signUp(input: {usernam: "x", username: "y", password: "y"}) { token } }',
        {},
    ),
    "enum-value": (
        'mutation { updateUser(endpoint: "users", uniqueId: "x", data: {}, strategy: FORC) '
        "{ errors { code } } }",
        {},
    ),
    "type-name": ("mutation($i: SignUpInpt!) { signUp(input: $i) { token } }", {}),
    "variable-field": (
        "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
        {"i": {"usernam": "x", "username": "y", "password": PASSWORD}},
    ),
}


@pytest.mark.parametrize("probe", list(SUGGESTION_PROBES))
async def test_no_did_you_mean_suggestions_outside_dev_mode(
    client: httpx.AsyncClient, probe: str
) -> None:
    # With introspection off, "Did you mean …" hints would let a caller rebuild the schema
    # name by name; none may appear, whichever kind of name was misspelled.
    query, variables = SUGGESTION_PROBES[probe]
    body = await gql(client, query, variables)
    assert body.get("data") is None
    assert messages(body), body
    for message in messages(body):
        assert "did you mean" not in message.lower(), message


@pytest.mark.parametrize("settings_env", [{"AMEND_DEV": "true"}], indirect=True)
@pytest.mark.parametrize("probe", ["field", "input-field", "enum-value"])
async def test_dev_mode_keeps_did_you_mean_suggestions(
    client: httpx.AsyncClient, probe: str
) -> None:
    query, variables = SUGGESTION_PROBES[probe]
    body = await gql(client, query, variables)
    assert any("Did you mean" in m for m in messages(body)), body


# --------------------------------------------------------------------------- masking


async def test_an_unexpected_exception_is_masked(
    client: httpx.AsyncClient, jane: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret SQL detail: SELECT * FROM users")

    monkeypatch.setattr(accounts, "session_info", boom)
    response = await client.post("/graphql", json={"query": SESSION}, headers=jane.auth)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    assert messages(body) == ["Unexpected error."]
    assert "secret" not in response.text
    assert "SQL" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    # The rest of the service is unaffected.
    assert await still_signed_in(client, jane)


async def test_an_unexpected_exception_in_a_mutation_is_masked_and_writes_nothing(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    db: TestDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def boom(*_args: Any, **_kwargs: Any) -> Any:
        raise ValueError("secret SQL detail")

    monkeypatch.setattr(accounts, "sign_up", boom)
    response = await client.post(
        "/graphql", json=signup_body(), headers={"X-API-Key": project.api_key}
    )
    body = response.json()
    assert messages(body) == ["Unexpected error."]
    assert "secret SQL detail" not in response.text
    assert "access_token" not in response.headers.get("set-cookie", "")
    assert user_count(db) == 0


async def test_an_amend_error_is_not_masked_and_keeps_its_extensions(
    client: httpx.AsyncClient, jane: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AmendError(Reason.PLAN_REQUIRED, "this plan does not include it")

    monkeypatch.setattr(accounts, "session_info", refuse)
    body = await gql(client, SESSION, headers=jane.auth)
    assert messages(body) == ["this plan does not include it"]
    assert top_error(body) == {"code": "FORBIDDEN", "reason": "PLAN_REQUIRED"}


async def test_graphql_validation_errors_are_not_masked(client: httpx.AsyncClient) -> None:
    body = await gql(client, "{ nothing }")
    assert messages(body) == ["Cannot query field 'nothing' on type 'Query'."]


# --------------------------------------------------------------------------- content types


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", orjson.dumps({"query": "mutation { signOut }"})),
        ("text/plain;charset=UTF-8", orjson.dumps({"query": "mutation { signOut }"})),
        ("application/x-www-form-urlencoded", b"query=mutation%20%7B%20signOut%20%7D"),
        (
            "multipart/form-data; boundary=X",
            b'--X\r\nContent-Disposition: form-data; name="query"\r\n\r\n'
            b"mutation { signOut }\r\n--X--\r\n",
        ),
        (None, orjson.dumps({"query": "mutation { signOut }"})),
    ],
    ids=["text-plain", "text-plain-charset", "form-urlencoded", "multipart", "no-content-type"],
)
async def test_a_non_json_post_is_refused_and_executes_nothing(
    client: httpx.AsyncClient, jane: Account, content_type: str | None, content: bytes
) -> None:
    # These are the "simple" content types a cross-site form may send without a preflight.
    headers = dict(jane.auth)
    if content_type is not None:
        headers["content-type"] = content_type
    response = await client.post("/graphql", content=content, headers=headers)
    assert response.status_code >= 400
    assert response.status_code < 500
    assert await still_signed_in(client, jane)


async def test_a_non_json_sign_up_creates_no_user(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB
) -> None:
    response = await client.post(
        "/graphql",
        content=orjson.dumps(signup_body()),
        headers={"content-type": "text/plain", "X-API-Key": project.api_key},
    )
    assert response.status_code >= 400
    assert user_count(db) == 0


@pytest.mark.parametrize(
    "content",
    [
        b"{",
        b"",
        b'"just a string"',
        b"[]",
        b"null",
        b'{"query": 5}',
        b'{"query": "{ me { id } }", "variables": [1]}',
    ],
    ids=[
        "truncated",
        "empty",
        "string",
        "empty-list",
        "null",
        "query-not-string",
        "variables-list",
    ],
)
async def test_a_malformed_json_body_is_a_client_error(
    client: httpx.AsyncClient, content: bytes
) -> None:
    response = await client.post(
        "/graphql", content=content, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text


async def test_json_with_a_charset_parameter_is_accepted(
    client: httpx.AsyncClient, jane: Account
) -> None:
    response = await client.post(
        "/graphql",
        content=orjson.dumps({"query": ME}),
        headers={**jane.auth, "content-type": "application/json; charset=utf-8"},
    )
    assert response.json()["data"]["me"]["username"] == "jane"


@pytest.mark.parametrize(
    "extra",
    [{}, {"extensions": {}}],
    ids=["direct-execution", "strawberry-pipeline"],
)
async def test_several_operations_without_an_operation_name_run_none(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, extra: dict[str, object]
) -> None:
    document = (
        'mutation A { signUp(input: {username: "eve", password: "Zght943!x"}) { token } } '
        "query B { __typename }"
    )
    r = await client.post(
        "/graphql", json={"query": document, **extra}, headers={"X-API-Key": project.api_key}
    )
    body = r.json()
    assert not body.get("data"), body
    assert "operation name" in body["errors"][0]["message"]
    # Naming one runs that one only.
    r = await client.post(
        "/graphql",
        json={"query": document, "operationName": "B", **extra},
        headers={"X-API-Key": project.api_key},
    )
    assert r.json() == {"data": {"__typename": "Query"}}
    assert db.sql("SELECT count(*) FROM users") == [(0,)]  # the first operation never ran
