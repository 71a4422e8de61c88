"""No password ever leaves the service, and no token or master key is ever logged (SPEC §2.2).

One full scenario over real HTTP — sign-up, sign-ins (good and bad), profile and record
updates, password changes by the user and by the master key, credential changes, and a few
malformed requests that carry passwords — with every response (body and headers) and every log
record (all loggers, DEBUG) captured, then searched for the secrets.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from api.logs import JSONFormatter
from tests.conftest import ProjectKeys
from tests.gql import (
    ME,
    RECORD,
    SIGN_UP,
    UPDATE_CREDENTIALS,
    UPDATE_ME,
    UPDATE_USER,
    gql,
    sign_in,
    sign_up,
)

# Distinctive passwords: any occurrence in a response or a log line is a leak.
SIGNUP_PASSWORD = "Leak1Canary9xq"
WRONG_PASSWORD = "Wrong7Canary3zz"
USER_DOC_PASSWORD = "Leak2Canary8xq"
CREDENTIALS_PASSWORD = "Leak3Canary7xq"
WRONG_CURRENT_PASSWORD = "Wrong5Canary1qq"
MASTER_SET_PASSWORD = "Leak6Canary4xq"
REFUSED_PASSWORDS = [
    "leakcanaryonlyletters",  # policy: no digit
    "Leak4Canary6xq",  # an unknown input field of updateMe
    "Leak5Canary5xq",  # inside a syntactically broken query
    "Leak7Canary3xq",  # custom data may not hold a password
    "Leak8Canary2xq",  # an unknown field of SignUpInput
]
PASSWORDS = [
    SIGNUP_PASSWORD,
    WRONG_PASSWORD,
    USER_DOC_PASSWORD,
    CREDENTIALS_PASSWORD,
    WRONG_CURRENT_PASSWORD,
    MASTER_SET_PASSWORD,
    *REFUSED_PASSWORDS,
]


class Capture:
    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []

    async def hook(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)

    def texts(self) -> list[str]:
        out = []
        for response in self.responses:
            out.append(response.text)
            out.extend(f"{name}: {value}" for name, value in response.headers.multi_items())
        return out


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def run_scenario(client: httpx.AsyncClient, project: ProjectKeys) -> list[str]:
    """Everything a user and an operator do; returns every token issued."""
    tokens: list[str] = []
    key = {"X-API-Key": project.api_key}

    jane = await sign_up(client, project.api_key, "jane", SIGNUP_PASSWORD, email="jane@example.com")
    tokens.append(jane.token)
    body = await sign_in(client, project.api_key, "jane@example.com", SIGNUP_PASSWORD)
    tokens.append(body["data"]["signIn"]["token"])
    body = await sign_in(client, project.api_key, "jane", WRONG_PASSWORD)
    assert body["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    body = await sign_in(client, project.api_key, "nobody", WRONG_PASSWORD)
    assert body["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"

    # Profile updates, one refused because custom data holds a password.
    body = await gql(
        client, UPDATE_ME, {"input": {"firstName": "Jane", "data": {"k": 1}}}, headers=jane.auth
    )
    assert body["data"]["updateMe"]["errors"] == []
    body = await gql(
        client,
        UPDATE_ME,
        {"input": {"data": {"password": REFUSED_PASSWORDS[3]}}},
        headers=jane.auth,
    )
    assert body["data"]["updateMe"]["errors"][0]["code"] == "FIELD_NOT_ALLOWED"

    # Malformed requests that carry passwords: validation errors must not echo them.
    response = await client.post(
        "/graphql",
        json={
            "query": UPDATE_ME,
            "variables": {"input": {"firstName": "X", "password": REFUSED_PASSWORDS[1]}},
        },
        headers=jane.auth,
    )
    assert response.json()["errors"]
    response = await client.post(
        "/graphql",
        json={
            "query": SIGN_UP,
            "variables": {
                "input": {"username": "x", "password": REFUSED_PASSWORDS[4], "bogus": True}
            },
        },
        headers=key,
    )
    assert response.json()["errors"]
    broken = (
        'mutation { signIn(input: {identifier: "jane", '
        f'password: "{REFUSED_PASSWORDS[2]}"}}) {{ token errors {{ code }} }}'
    )
    response = await client.post("/graphql", json={"query": broken}, headers=key)
    assert response.json()["errors"]

    # The record API: same password (unchanged), a refused one, then a new one.
    doc_vars = {"endpoint": "users", "uniqueId": jane.unique_id}
    body = await gql(
        client,
        UPDATE_USER,
        {**doc_vars, "data": {"username": "jane", "password": SIGNUP_PASSWORD, "k": 2}},
        headers=jane.auth,
    )
    assert body["data"]["updateUser"]["errors"] == []
    body = await gql(
        client,
        UPDATE_USER,
        {**doc_vars, "data": {"password": REFUSED_PASSWORDS[0]}, "strategy": "MERGE"},
        headers=jane.auth,
    )
    assert body["data"]["updateUser"]["errors"][0]["code"] == "PASSWORD_POLICY"
    body = await gql(
        client,
        UPDATE_USER,
        {**doc_vars, "data": {"password": USER_DOC_PASSWORD}, "strategy": "MERGE"},
        headers=jane.auth,
    )
    assert body["data"]["updateUser"]["errors"] == []
    body = await gql(client, ME, headers=jane.auth)  # revoked: a top-level (logged) error
    assert body["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"

    # Credentials: a change with proof, then a wrong proof.
    body = await sign_in(client, project.api_key, "jane", USER_DOC_PASSWORD)
    token = body["data"]["signIn"]["token"]
    tokens.append(token)
    body = await gql(
        client,
        UPDATE_CREDENTIALS,
        {"input": {"password": CREDENTIALS_PASSWORD, "currentPassword": USER_DOC_PASSWORD}},
        headers=bearer(token),
    )
    assert body["data"]["updateCredentials"]["errors"] == []
    body = await sign_in(client, project.api_key, "jane", CREDENTIALS_PASSWORD)
    token = body["data"]["signIn"]["token"]
    tokens.append(token)
    body = await gql(
        client,
        UPDATE_CREDENTIALS,
        {"input": {"email": "j2@example.com", "currentPassword": WRONG_CURRENT_PASSWORD}},
        headers=bearer(token),
    )
    assert body["data"]["updateCredentials"]["errors"][0]["code"] == "REAUTHENTICATION_REQUIRED"

    # The operator: the master key in the query string and in a header.
    body = await gql(
        client,
        RECORD,
        doc_vars,
        params={"masterKey": project.master_key},
    )
    assert body["data"]["record"]["data"]["username"] == "jane"
    body = await gql(
        client,
        UPDATE_USER,
        {**doc_vars, "data": {"password": MASTER_SET_PASSWORD}, "strategy": "MERGE"},
        headers={"X-Master-Key": project.master_key},
    )
    assert body["data"]["updateUser"]["errors"] == []
    body = await gql(client, ME, headers=bearer(token))
    assert body["errors"][0]["extensions"]["reason"] == "SESSION_REVOKED"
    body = await sign_in(client, project.api_key, "jane", MASTER_SET_PASSWORD)
    tokens.append(body["data"]["signIn"]["token"])
    return tokens


# The test's own HTTP client logs the URLs it requests (`?masterKey=`): that is the caller's
# log, not the service's.
CLIENT_LOGGERS = {"httpx", "httpcore"}


def log_lines(records: list[logging.LogRecord]) -> list[str]:
    """Each record as the service would write it (JSON with every extra), plus its raw parts."""
    formatter = JSONFormatter()
    lines = []
    for record in records:
        if record.name.split(".")[0] in CLIENT_LOGGERS:
            continue
        lines.append(formatter.format(record))
        lines.append(record.getMessage())
        lines.append(repr(record.args))
    return lines


@pytest.fixture
def capture(client: httpx.AsyncClient) -> Capture:
    cap = Capture()
    client.event_hooks["response"].append(cap.hook)
    return cap


async def test_secrets_never_leak(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = await run_scenario(client, project)

    responses = capture.texts()
    assert len(capture.responses) >= 20  # the hook saw the whole scenario
    for text in responses:
        for password in PASSWORDS:
            assert password not in text, f"password {password!r} in a response: {text[:300]}"

    lines = log_lines(caplog.records)
    assert any("graphql error" in line for line in lines)  # the logs were captured
    secrets = {
        **{f"password {p}": p for p in PASSWORDS},
        **{f"token #{i}": t for i, t in enumerate(tokens)},
        # A token's signature alone is as good as a leak of the whole token.
        **{f"token signature #{i}": t.rsplit(".", 1)[1] for i, t in enumerate(tokens)},
        "master key": project.master_key,
    }
    for line in lines:
        for name, secret in secrets.items():
            assert secret not in line, f"{name} in a log line: {line[:300]}"


async def test_secrets_never_leak_without_debug_logging(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    capture: Capture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The default level (info) must be as clean as DEBUG; run once more to be sure no
    # level-dependent path (e.g. a warning with details) leaks.
    caplog.set_level(logging.INFO)
    tokens = await run_scenario(client, project)
    for line in log_lines(caplog.records):
        for secret in (*PASSWORDS, *tokens, project.master_key):
            assert secret not in line
    for text in capture.texts():
        for password in PASSWORDS:
            assert password not in text


async def test_query_text_is_never_logged(
    client: httpx.AsyncClient, project: ProjectKeys, caplog: pytest.LogCaptureFixture
) -> None:
    """A located GraphQL error prints the query around its location when formatted with
    `str()`; the service logs only the message, so an inline password is never logged."""
    caplog.set_level(logging.DEBUG)
    account = await sign_up(client, project.api_key, "jane", SIGNUP_PASSWORD)
    client.cookies.clear()
    query = (
        f'mutation {{ updateUser(endpoint: "users", uniqueId: "{account.unique_id}", '
        f'data: {{username: "jane", password: "{USER_DOC_PASSWORD}"}}) {{ errors {{ code }} }} }}'
    )
    body = (await client.post("/graphql", json={"query": query})).json()
    assert body["errors"][0]["extensions"]["reason"] == "MISSING_TOKEN"
    for line in log_lines(caplog.records):
        assert USER_DOC_PASSWORD not in line
        assert SIGNUP_PASSWORD not in line
