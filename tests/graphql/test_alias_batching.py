"""Password-checking fields cannot be batched through aliases or fragments."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD, ProjectKeys
from tests.gql import gql, sign_up

GUESS = 'signIn(input: {{identifier: "jane", password: "{pw}"}}) {{ token errors {{ code }} }}'


@pytest.mark.parametrize(
    "query",
    [
        "mutation { a: "
        + GUESS.format(pw="Guess-1a")
        + " b: "
        + GUESS.format(pw="Guess-2b")
        + " }",
        "mutation { ...F ...G } fragment F on Mutation { a: "
        + GUESS.format(pw="Guess-1a")
        + " } fragment G on Mutation { b: "
        + GUESS.format(pw="Guess-2b")
        + " }",
        "mutation { ... on Mutation { a: "
        + GUESS.format(pw="Guess-1a")
        + " } b: "
        + GUESS.format(pw="Guess-2b")
        + " }",
        "mutation { a: updateCredentials(input: "
        '{currentPassword: "Guess-1a", password: "N3w-pass-1"}) { errors { code } } '
        "b: updateCredentials(input: "
        '{currentPassword: "Guess-2b", password: "N3w-pass-1"}) { errors { code } } }',
    ],
    ids=["aliases", "fragments", "inline-fragment", "update-credentials"],
)
async def test_batched_password_checks_are_refused_before_execution(
    client: httpx.AsyncClient, project: ProjectKeys, query: str
) -> None:
    account = await sign_up(client, project.api_key)
    body = await gql(client, query, headers={"X-API-Key": project.api_key, **account.auth})
    assert body.get("data") is None
    assert "only once per request" in body["errors"][0]["message"]
    # Nothing ran: no failed attempt was recorded, so the real password still signs in and
    # the throttle saw no guess.
    info = await gql(client, "{ session { signinAttempts { succeeded } } }", headers=account.auth)
    assert info["data"]["session"]["signinAttempts"] == []


async def test_one_sign_in_next_to_other_fields_is_fine(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    await sign_up(client, project.api_key)
    query = "mutation { a: " + GUESS.format(pw=PASSWORD) + " }"
    body = await gql(client, query, headers={"X-API-Key": project.api_key})
    assert body["data"]["a"]["errors"] == []
