"""Account recovery (SPEC §11): password reset, "this wasn't me" and email verification, end to
end through the API and a real SMTP server; every token single-use, expiring, never readable in
clear from the database or a log; no enumeration; throttled."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from api.core.clock import now_ms
from api.services.container import Services
from api.services.delivery import LogMailer, deliver_due
from api.store import Tx, outbox
from api.store.tables import metadata
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import ME, UPDATE_CREDENTIALS, Account, gql, sign_in, sign_up
from tests.mail import queued, token_in
from tests.test_notices import SENDER, Sink, make_sink, parse, sink  # noqa: F401 - SMTP fixtures
from tests.test_secrets_never_leak import log_lines

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


# --------------------------------------------------------------------------------------------
# Password reset
# --------------------------------------------------------------------------------------------


async def test_password_reset_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    r = await request_reset(client, project, "jane")
    assert r.json() == {"data": {"requestPasswordReset": True}}
    token = await delivered_token(services, sink, EMAIL, "Reset your")
    [message] = sink.messages()
    assert message["mail_from"] == SENDER
    text = parse(message).get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert RESET_URL.replace("{token}", token) in text
    # The project's name, the expiry time, and what to do if it was not you.
    assert "acme" in text and "until 20" in text and "If you did not ask for this" in text

    payload = await call(
        client, RESET, {"input": {"token": token, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert payload["errors"] == []
    assert payload["reauthenticationRequired"] is True
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}
    assert not await alive(client, jane)  # every session revoked
    assert await signs_in(client, project, "jane", NEW_PASSWORD)
    assert not await signs_in(client, project, "jane", PASSWORD)
    [(action,)] = db.sql("SELECT action FROM audit_events WHERE action = 'reset_password'")
    assert action == "reset_password"
    assert queued(db, kind="credentials_changed", to=EMAIL)  # the notice of the change

    # Single use.
    again = await call(
        client, RESET, {"input": {"token": token, "password": "An0therPass99"}}, "resetPassword"
    )
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_CODE", ["token"])]
    # Never in clear in the database (the delivered mail is redacted) or in a log.
    await deliver_due(services.db, sink.mailer(), services.sealer)
    assert token not in every_text(db)
    assert all(token not in line for line in log_lines(caplog.records))


async def test_unknown_identifier_gets_the_same_answer_and_no_mail(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,  # noqa: F811
) -> None:
    known = await request_reset(client, project, "jane")
    unknown = await request_reset(client, project, "nobody-here")
    unknown_email = await request_reset(client, project, "nobody@example.com")
    assert known.status_code == unknown.status_code == unknown_email.status_code == 200
    assert known.content == unknown.content == unknown_email.content
    assert _headers(known) == _headers(unknown) == _headers(unknown_email)
    await services.delivery.settle()
    assert [to for (to,) in db.sql('SELECT "to" FROM outbox')] == [EMAIL]
    await deliver_due(services.db, sink.mailer(), services.sealer)
    assert [m["rcpt_tos"] for m in sink.messages()] == [[EMAIL]]


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k != "x-request-id"}


async def test_reset_by_email_identifier_mails_the_owner(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_reset(client, project, EMAIL.upper())
    await services.delivery.settle()
    assert len(queued(db, kind="password_reset", to=EMAIL)) == 1


async def test_reset_token_expires(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    token = token_in(queued(db, kind="password_reset")[0])
    db.sql("UPDATE recovery_tokens SET expires_at = ?", (now_ms() - 1,))
    payload = await call(
        client, RESET, {"input": {"token": token, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]
    assert await signs_in(client, project, "jane", PASSWORD)


async def test_a_newer_request_and_any_credential_change_invalidate_reset_tokens(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    first = token_in(queued(db, kind="password_reset")[0])
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    second = token_in(queued(db, kind="password_reset")[0])
    assert first != second
    payload = await call(
        client, RESET, {"input": {"token": first, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]

    body = await gql(
        client, UPDATE_CREDENTIALS, {"input": {"password": "Chang3dPass77"}}, headers=jane.auth
    )
    assert body["data"]["updateCredentials"]["errors"] == [], body
    payload = await call(
        client, RESET, {"input": {"token": second, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]


async def test_weak_password_is_refused_and_the_token_kept(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    token = token_in(queued(db, kind="password_reset")[0])
    payload = await call(
        client, RESET, {"input": {"token": token, "password": "x"}}, "resetPassword"
    )
    assert [(e["code"], e["field"]) for e in payload["errors"]] == [
        ("PASSWORD_POLICY", ["password"])
    ]
    payload = await call(
        client, RESET, {"input": {"token": token, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert payload["errors"] == []


async def test_reset_requests_are_throttled_per_identifier(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, jane: Account
) -> None:
    limit = services.settings.signin_max_failures
    for _ in range(limit):
        assert (await request_reset(client, project, "nobody")).json()["data"] is not None
    body = (await request_reset(client, project, "nobody")).json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    # Another identifier is not held back by this one's requests.
    assert (await request_reset(client, project, "jane")).json() == {
        "data": {"requestPasswordReset": True}
    }


@pytest.mark.parametrize(
    "settings_env", [{**URLS, "AMEND_SIGNIN_MAX_FAILURES_PER_IP": "3"}], indirect=True
)
async def test_reset_requests_are_throttled_per_client_ip(
    client: httpx.AsyncClient, project: ProjectKeys
) -> None:
    for n in range(3):
        assert (await request_reset(client, project, f"someone{n}")).json()["data"] is not None
    body = (await request_reset(client, project, "someone-else")).json()
    assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


# --------------------------------------------------------------------------------------------
# "This wasn't me"
# --------------------------------------------------------------------------------------------


async def change_email(client: httpx.AsyncClient, account: Account, email: str) -> None:
    body = await gql(client, UPDATE_CREDENTIALS, {"input": {"email": email}}, headers=account.auth)
    assert body["data"]["updateCredentials"]["errors"] == [], body


async def test_revert_email_change_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,  # noqa: F811
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = await delivered_token(services, sink, EMAIL, "Your email changed")
    assert token not in every_text(db)
    # The attacker signs in with the new address and opens a session.
    attacker_token = (await sign_in(client, project.api_key, NEW_EMAIL, PASSWORD))["data"][
        "signIn"
    ]["token"]
    assert attacker_token

    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert payload["errors"] == []
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}
    assert payload["reauthenticationRequired"] is True
    body = await gql(client, ME, headers={"Authorization": f"Bearer {attacker_token}"})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    [(action,)] = db.sql("SELECT action FROM audit_events WHERE action = 'revert_email_change'")
    assert action == "revert_email_change"
    # A reset link goes to the restored address, so the owner takes the password back too.
    reset_token = await delivered_token(services, sink, EMAIL, "Reset your")
    payload = await call(
        client, RESET, {"input": {"token": reset_token, "password": NEW_PASSWORD}}, "resetPassword"
    )
    assert payload["errors"] == []
    assert await signs_in(client, project, EMAIL, NEW_PASSWORD)

    again = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [(e["code"], e["field"]) for e in again["errors"]] == [("INVALID_CODE", ["token"])]


async def test_revert_refused_when_another_account_took_the_old_address(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = token_in(queued(db, kind="credentials_changed", to=EMAIL)[0])
    await sign_up(client, project.api_key, "mallory", email=EMAIL)
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [e["code"] for e in payload["errors"]] == ["EMAIL_TAKEN"]
    assert db.sql("SELECT email FROM users WHERE username = 'jane'") == [(NEW_EMAIL,)]


async def test_revert_token_expires(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    token = token_in(queued(db, kind="credentials_changed", to=EMAIL)[0])
    db.sql("UPDATE recovery_tokens SET expires_at = ?", (now_ms() - 1,))
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]


@pytest.mark.parametrize("settings_env", [{**URLS, "AMEND_EMAIL_CHANGE": "verify"}], indirect=True)
async def test_verified_email_change_mails_a_revert_link_to_the_old_address(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    await change_email(client, jane, NEW_EMAIL)
    code = token_in_code(queued(db, kind="email_change_code", to=NEW_EMAIL)[0])
    body = await gql(
        client,
        "mutation($c: String!) { confirmEmailChange(code: $c) { errors { code } } }",
        {"c": code},
        headers=jane.auth,
    )
    assert body["data"]["confirmEmailChange"]["errors"] == [], body
    [notice] = queued(db, kind="credentials_changed", to=EMAIL)
    token = token_in(notice)
    payload = await call(client, REVERT, {"token": token}, "revertEmailChange")
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}


async def test_rest_email_change_mails_a_revert_link_to_the_old_address(
    client: httpx.AsyncClient, db: TestDB, jane: Account
) -> None:
    r = await client.put(
        "/api/user/v1/update", json={"eml": NEW_EMAIL}, headers={"X-Access-Token": jane.token}
    )
    assert r.json()["code"] == 0, r.text
    [notice] = queued(db, kind="credentials_changed", to=EMAIL)
    assert REVERT_URL.replace("{token}", token_in(notice)) in notice


def token_in_code(body: str) -> str:
    import re

    match = re.search(r"\b(\d{6})\b", body)
    assert match, body
    return match.group(1)


# --------------------------------------------------------------------------------------------
# Email verification
# --------------------------------------------------------------------------------------------


async def test_email_verification_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    sink: Sink,  # noqa: F811
) -> None:
    body = await gql(client, SEND_VERIFICATION, headers=jane.auth)
    assert body == {"data": {"sendEmailVerification": True}}
    token = await delivered_token(services, sink, EMAIL, "Confirm your")
    payload = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert payload["errors"] == []
    assert payload["user"] == {"email": EMAIL, "emailVerified": True}
    assert payload["reauthenticationRequired"] is False
    assert await alive(client, jane)  # verifying revokes nothing
    [(action,)] = db.sql("SELECT action FROM audit_events WHERE action = 'verify_email'")
    assert action == "verify_email"
    again = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert [e["code"] for e in again["errors"]] == ["INVALID_CODE"]
    # Verified already: nothing more is mailed.
    assert (await gql(client, SEND_VERIFICATION, headers=jane.auth))["data"] == {
        "sendEmailVerification": True
    }
    assert len(queued(db, kind="email_verification")) == 1


async def test_verification_link_for_an_old_address_is_refused(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    await gql(client, SEND_VERIFICATION, headers=jane.auth)
    token = token_in(queued(db, kind="email_verification")[0])
    await change_email(client, jane, NEW_EMAIL)
    payload = await call(client, VERIFY, {"token": token}, "verifyEmail")
    assert [e["code"] for e in payload["errors"]] == ["INVALID_CODE"]


# --------------------------------------------------------------------------------------------
# Secrets at rest, the outbox listing, permanent failures
# --------------------------------------------------------------------------------------------


async def test_queued_mails_with_tokens_are_sealed_and_listed_redacted(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    token = token_in(queued(db, kind="password_reset")[0])
    assert token not in every_text(db)
    async with services.db.read() as tx:
        [notice] = await outbox.listing(tx)
    assert notice.body == outbox.SEALED_BODY
    # The log mailer (not under --dev) does not show the body either.
    assert await deliver_due(services.db, LogMailer(), services.sealer) == 1
    assert all(token not in line for line in log_lines(caplog.records))
    assert db.sql("SELECT body, sealed FROM outbox") == [(outbox.REDACTED_BODY, False)]


async def test_a_permanent_smtp_refusal_is_not_retried(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    make_sink: Any,  # noqa: F811
) -> None:
    refusing = make_sink(refuse=[EMAIL])
    await request_reset(client, project, "jane")
    await services.delivery.settle()
    assert await deliver_due(services.db, refusing.mailer(), services.sealer) == 0
    [(failed_at, attempts, error)] = db.sql("SELECT failed_at, attempts, last_error FROM outbox")
    assert failed_at is not None and attempts == 1 and "550" in error
    db.sql("UPDATE outbox SET next_attempt_at = 0")
    assert await deliver_due(services.db, refusing.mailer(), services.sealer) == 0
    assert db.sql("SELECT attempts FROM outbox") == [(1,)]
    assert refusing.messages() == []


async def test_known_and_unknown_identifiers_run_the_same_statements(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    jane: Account,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    statements: list[str] = []
    for cls in Tx.__subclasses__():
        for name in ("run", "one", "all"):
            real = getattr(cls, name)

            async def counted(self: Any, stmt: Any, *args: Any, _real: Any = real) -> Any:
                statements.append(str(stmt).split()[0])
                return await _real(self, stmt, *args)

            monkeypatch.setattr(cls, name, counted)

    async def run(identifier: str) -> list[str]:
        statements.clear()
        await request_reset(client, project, identifier)
        seen = list(statements)  # the mail of a known account is queued after the answer
        await services.delivery.settle()
        return seen

    known = await run("jane")
    unknown = await run("nobody-here")
    assert known == unknown and len(known) > 3
