"""A stolen token must not turn the document's password into an unthrottled password oracle.

`updateUser` (and `PUT /1/ce`) compare a document's password with the stored one to tell an
unchanged password from a new one. Without proof of presence (a recent sign-in), that
comparison answers "right" or "wrong" for a guess: it is a password check like a sign-in, so it
is recorded, throttled, refused before hashing once throttled, and one per GraphQL request.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.services.container import Services
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import (
    SESSION,
    UPDATE_USER,
    Account,
    age_sessions,
    gql,
    sign_in,
    sign_up,
    sql,
)

WRONG = ["Guess-one-1", "Guess-two-2", "Guess-three-3", "Guess-four-4", "Guess-five-5"]


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys, db: TestDB) -> Account:
    account = await sign_up(client, project.api_key, "jane", email="jane@example.com")
    client.cookies.clear()
    age_sessions(db)  # the token is outside the re-authentication window: no proof of presence
    return account


@pytest.fixture
def hashing(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the hasher's operations, in order, as the server runs them."""
    calls: list[str] = []
    hasher = services.hasher
    for name in ("hash", "verify", "dummy_verify"):
        original = getattr(hasher, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls.append(_name)
            return await _original(*args)

        monkeypatch.setattr(hasher, name, counted)
    yield calls


async def guess_through_update_user(
    client: httpx.AsyncClient, jane: Account, guess: str, *, dry_run: bool = False
) -> dict[str, Any]:
    return await gql(
        client,
        UPDATE_USER,
        {
            "endpoint": "users",
            "uniqueId": jane.unique_id,
            "data": {"password": guess},
            "strategy": "MERGE",
            "dryRun": dry_run,
        },
        headers=jane.auth,
    )


async def guess_through_record_api(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, guess: str
) -> httpx.Response:
    return await client.put(
        "/1/ce/users",
        params={"key": project.api_key, "uniqueId": jane.unique_id, "strategy": "merge"},
        json={"password": guess},
        headers=jane.auth,
    )


async def failed_checks(client: httpx.AsyncClient, jane: Account) -> list[dict[str, Any]]:
    body = await gql(client, SESSION, headers=jane.auth)
    return [a for a in body["data"]["session"]["signinAttempts"] if not a["succeeded"]]


@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
async def test_a_wrong_document_password_from_a_stolen_token_counts_as_a_failed_sign_in(
    client: httpx.AsyncClient, jane: Account, dry_run: bool
) -> None:
    body = await guess_through_update_user(client, jane, WRONG[0], dry_run=dry_run)
    payload = body["data"]["updateUser"]
    assert [e["code"] for e in payload["errors"]] == ["REAUTHENTICATION_REQUIRED"]
    failures = await failed_checks(client, jane)
    assert len(failures) == 1
    assert failures[0]["identifier"] == "jane"


@pytest.mark.parametrize("dry_run", [False, True], ids=["write", "dry-run"])
async def test_the_document_password_oracle_is_throttled_before_hashing(
    client: httpx.AsyncClient, jane: Account, hashing: list[str], dry_run: bool
) -> None:
    for guess in WRONG:
        body = await guess_through_update_user(client, jane, guess, dry_run=dry_run)
        assert body["data"]["updateUser"]["errors"][0]["code"] == "REAUTHENTICATION_REQUIRED"
    hashing.clear()
    # The sixth guess is the right password: the throttle answers before any hash is computed,
    # so a right guess and a wrong one look the same.
    body = await guess_through_update_user(client, jane, PASSWORD, dry_run=dry_run)
    assert body["data"] is None or body["data"]["updateUser"] is None
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert hashing == []


async def test_a_locked_account_stays_locked_against_the_document_password_oracle(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, hashing: list[str]
) -> None:
    for guess in WRONG:  # an attacker (or anyone) trips the sign-in throttle first
        await sign_in(client, project.api_key, "jane", guess)
    hashing.clear()
    body = await guess_through_update_user(client, jane, PASSWORD, dry_run=True)
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    response = await guess_through_record_api(client, project, jane, PASSWORD)
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "RATE_LIMITED"
    assert hashing == []


async def test_the_record_api_password_oracle_is_counted_and_throttled(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, db: TestDB
) -> None:
    for guess in WRONG:
        response = await guess_through_record_api(client, project, jane, guess)
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "REAUTHENTICATION_REQUIRED"
    assert len(await failed_checks(client, jane)) == len(WRONG)
    response = await guess_through_record_api(client, project, jane, PASSWORD)
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    # The password is what it was: the owner still signs in once the window has passed.
    sql(db, "UPDATE signin_attempts SET created_at = created_at - ?", (3600 * 1000,))
    signed_in = await sign_in(client, project.api_key, "jane", PASSWORD)
    assert signed_in["data"]["signIn"]["errors"] == []


async def test_a_right_document_password_from_a_stolen_token_changes_nothing_else(
    client: httpx.AsyncClient, jane: Account
) -> None:
    body = await guess_through_update_user(client, jane, PASSWORD)
    payload = body["data"]["updateUser"]
    assert payload["errors"] == []
    assert await failed_checks(client, jane) == []


@pytest.mark.parametrize(
    "query",
    [
        # Fifteen guesses in one request, through aliases...
        "mutation($u: String!) { "
        + " ".join(
            f'g{i}: updateUser(endpoint: "users", uniqueId: $u, strategy: MERGE, dryRun: true, '
            f'data: {{password: "Guess-{i}-x"}}) {{ errors {{ code }} }}'
            for i in range(15)
        )
        + " }",
        # ... or through fragments and variables.
        "mutation($u: String!, $a: JSON!, $b: JSON!) { ...A ... on Mutation { "
        'b: updateUser(endpoint: "users", uniqueId: $u, data: $b, dryRun: true) '
        "{ errors { code } } } } fragment A on Mutation { "
        'a: updateUser(endpoint: "users", uniqueId: $u, data: $a, dryRun: true) '
        "{ errors { code } } }",
        # ... or next to another password-checking field.
        "mutation($u: String!, $a: JSON!) { "
        'a: updateUser(endpoint: "users", uniqueId: $u, data: $a) { errors { code } } '
        'signIn(input: {identifier: "jane", password: "Guess-1a"}) { token } }',
    ],
    ids=["aliases", "fragments-and-variables", "with-sign-in"],
)
async def test_several_password_checks_in_one_request_are_refused_before_execution(
    client: httpx.AsyncClient, project: ProjectKeys, jane: Account, hashing: list[str], query: str
) -> None:
    variables = {
        "u": jane.unique_id,
        "a": {"password": "Guess-a-1"},
        "b": {"username": "jane", "password": "Guess-b-2"},
    }
    used = {k: v for k, v in variables.items() if f"${k}" in query}
    body = await gql(client, query, used, headers={**jane.auth, "X-API-Key": project.api_key})
    assert body.get("data") is None, body
    assert "only once per request" in body["errors"][0]["message"]
    assert hashing == []
    assert await failed_checks(client, jane) == []


async def test_several_document_updates_without_a_password_run_in_one_request(
    client: httpx.AsyncClient, jane: Account
) -> None:
    query = (
        "mutation($u: String!, $a: JSON!) { "
        'a: updateUser(endpoint: "users", uniqueId: $u, data: $a, strategy: MERGE, dryRun: true)'
        " { errors { code } } "
        'b: updateUser(endpoint: "users", uniqueId: $u, data: {colour: "red"}, strategy: MERGE)'
        " { errors { code } record { version } } }"
    )
    body = await gql(
        client, query, {"u": jane.unique_id, "a": {"theme": "dark"}}, headers=jane.auth
    )
    assert "errors" not in body, body
    assert body["data"]["b"]["record"]["version"] == 2
