"""Password reset (SPEC §11), end to end through the API and a real SMTP server: single-use,
expiring tokens never readable in clear from the database or a log; no enumeration (same
answer, body and statements); throttled per identifier and per client IP."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

import tests.recovery as fixtures
from api.core.clock import now_ms
from api.services.container import Services
from api.services.delivery import LogMailer, deliver_due
from api.store import Tx, outbox
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import UPDATE_CREDENTIALS, Account, gql
from tests.mail import queued, token_in
from tests.recovery import (
    EMAIL,
    NEW_PASSWORD,
    RESET,
    RESET_URL,
    SENDER,
    URLS,
    Sink,
    alive,
    call,
    delivered_token,
    every_text,
    parse,
    request_reset,
    signs_in,
)
from tests.test_secrets_never_leak import log_lines

# The recovery tests' fixtures (pytest finds fixtures by module-level name).
jane = fixtures.jane
settings_env = fixtures.settings_env
sink = fixtures.sink
make_sink = fixtures.make_sink

# --------------------------------------------------------------------------------------------
# Password reset
# --------------------------------------------------------------------------------------------


async def test_password_reset_end_to_end(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,
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
    assert queued(db, kind="password_changed", to=EMAIL)  # the notice of the change

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
    sink: Sink,
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
    make_sink: Any,
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
    # Every engine's own statement methods (an inherited one calls one of these).
    engines = [Tx]
    for engine in engines:
        engines.extend(engine.__subclasses__())
    for cls in engines[1:]:
        for name in ("run", "one", "all"):
            if name not in vars(cls):
                continue
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
