"""Shared by the account-recovery tests: operations, fixtures and mail helpers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.services.container import Services
from api.services.delivery import deliver_due
from api.store.tables import metadata
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import ME, Account, gql, sign_in, sign_up
from tests.mail import token_in
from tests.test_notices import SENDER, Sink, make_sink, parse, sink  # noqa: F401 - re-exported

EMAIL = "jane@example.com"
NEW_EMAIL = "jane.new@example.com"
NEW_PASSWORD = "N3wSecret42x"
RESET_URL = "https://app.example.com/reset?token={token}"
REVERT_URL = "https://app.example.com/revert?token={token}"
VERIFY_URL = "https://app.example.com/verify?token={token}"
URLS = {
    "AMEND_PASSWORD_RESET_URL": RESET_URL,
    "AMEND_EMAIL_REVERT_URL": REVERT_URL,
    "AMEND_EMAIL_VERIFY_URL": VERIFY_URL,
}

REQUEST = """mutation($input: PasswordResetRequestInput!) { requestPasswordReset(input: $input) }"""
PAYLOAD = "user { email emailVerified } reauthenticationRequired errors { code message field }"
RESET = f"mutation($input: ResetPasswordInput!) {{ resetPassword(input: $input) {{ {PAYLOAD} }} }}"
REVERT = f"mutation($token: String!) {{ revertEmailChange(token: $token) {{ {PAYLOAD} }} }}"
SEND_VERIFICATION = "mutation { sendEmailVerification }"
VERIFY = f"mutation($token: String!) {{ verifyEmail(token: $token) {{ {PAYLOAD} }} }}"
AUDIT = "query { auditLog { edges { node { action fields } } } }"


@pytest.fixture
def settings_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The link templates, and what a test parametrizes (`indirect=True`)."""
    return {**URLS, **getattr(request, "param", {})}


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL)


async def request_reset(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": REQUEST, "variables": {"input": {"identifier": identifier}}},
        headers={"X-API-Key": project.api_key},
    )


async def call(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], name: str
) -> dict[str, Any]:
    body = await gql(client, query, variables)
    assert "errors" not in body, body
    payload = body["data"][name]
    assert isinstance(payload, dict)
    return payload


async def delivered_token(services: Services, smtp: Sink, to: str, kind_subject: str) -> str:
    """Deliver what is queued through SMTP; the token of the newest mail to `to`."""
    await services.delivery.settle()
    await deliver_due(services.db, smtp.mailer(), services.sealer)
    found = [
        parse(m)
        for m in smtp.messages()
        if m["rcpt_tos"] == [to] and kind_subject in parse(m)["Subject"]
    ]
    assert found, [parse(m)["Subject"] for m in smtp.messages()]
    message = found[-1]
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert "If you did not ask for this" in text or "If this was not you" in text
    token = token_in(text)
    assert token in html.get_content()  # the HTML part carries the same link
    return token


def every_text(db: TestDB) -> str:
    """Every value of every table, as text."""
    values = []
    for table in metadata.sorted_tables:
        for row in db.sql(f'SELECT * FROM "{table.name}"'):
            values.extend(str(v) for v in row)
    return "\n".join(values)


async def signs_in(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str, password: str
) -> bool:
    body = await sign_in(client, project.api_key, identifier, password)
    return bool(body["data"]["signIn"]["token"])


async def alive(client: httpx.AsyncClient, account: Account) -> bool:
    return "errors" not in await gql(client, ME, headers=account.auth)
