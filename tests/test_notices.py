"""Security notices (SPEC §4, §9): every credential change, by any route, queues exactly one
notice in the outbox in the transaction of the change, to the old address when the email
changed; the mailer delivers it after commit, off the request path, and retries what failed.

Delivery goes through a real SMTP server: a separate process (aiosmtpd) that appends every
message it receives, and every AUTH it is offered, as a JSON line to a file the tests read.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.core.clock import now_ms
from api.services import delivery
from api.services.container import Services
from api.services.delivery import LogMailer, SmtpMailer, deliver_due
from api.store import Database, outbox
from tests.conftest import PASSWORD, ProjectKeys
from tests.db import TestDB
from tests.gql import (
    UPDATE_CREDENTIALS,
    UPDATE_ME,
    UPDATE_USER,
    Account,
    gql,
    sign_in,
    sign_up,
)
from tests.mail import opened
from tests.servers import amend, create_project, free_port, serve

EMAIL = "jane@example.com"
NEW_EMAIL = "jane.new@example.com"
NEW_PASSWORD = "N3wSecret42x"
SENDER = "amend@example.com"
SMTP_USER = "relay-user"
SMTP_PASSWORD = "relay-Secret-pw-77"

# --------------------------------------------------------------------------------------------
# The SMTP sink: a separate process, not a mock.
# --------------------------------------------------------------------------------------------

SINK = r"""
import asyncio, json, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

port, out, opts = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])


def record(entry):
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in opts.get("refuse", []):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"
    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(opts.get("delay", 0))
        record({
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "content": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
        })
        return "250 OK"


def authenticator(server, session, envelope, mechanism, auth_data):
    record({
        "auth": mechanism,
        "login": auth_data.login.decode(),
        "password": auth_data.password.decode(),
        "tls": session.ssl is not None,
    })
    return AuthResult(success=True)


kwargs = {}
if opts.get("auth"):
    # AUTH is offered even over plain text: only the client can keep the password safe.
    kwargs.update(authenticator=authenticator, auth_require_tls=False)
if opts.get("tls"):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(opts["tls"]["cert"], opts["tls"]["key"])
    kwargs["tls_context"] = context
controller = Controller(Handler(), hostname="127.0.0.1", port=port, **kwargs)
controller.start()
print("ready", flush=True)
sys.stdin.read()  # until the test closes our stdin
controller.stop()
"""


class Sink:
    """An SMTP server process on `port`; `messages()` and `auths()` read what it received."""

    def __init__(self, directory: Path, port: int | None = None, **opts: Any) -> None:
        self.port = port or free_port()
        self.path = directory / f"smtp-{self.port}.jsonl"
        self.opts = opts
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Sink:
        self.process = subprocess.Popen(
            [sys.executable, "-c", SINK, str(self.port), str(self.path), json.dumps(self.opts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            self.process.kill()
            _, err = self.process.communicate(timeout=10)
            raise RuntimeError(f"the SMTP sink did not start: {err.decode(errors='replace')}")
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        self.process = None

    def url(self, *, starttls: str = "off", userinfo: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"smtp://{at}127.0.0.1:{self.port}?starttls={starttls}&from={SENDER}"

    def mailer(self, **kwargs: str) -> SmtpMailer:
        return SmtpMailer.from_url(self.url(**kwargs))

    def _entries(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]

    def messages(self) -> list[dict[str, Any]]:
        return [e for e in self._entries() if "content" in e]

    def auths(self) -> list[dict[str, Any]]:
        return [e for e in self._entries() if "auth" in e]


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    server = Sink(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def make_sink(tmp_path: Path) -> Iterator[Callable[..., Sink]]:
    started: list[Sink] = []

    def make(port: int | None = None, **opts: Any) -> Sink:
        server = Sink(tmp_path, port, **opts).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    id: int
    to: str
    kind: str
    subject: str
    body: str
    delivered_at: int | None
    attempts: int
    last_error: str | None
    next_attempt_at: int


def outbox_rows(db: TestDB) -> list[Row]:
    rows = db.sql(
        'SELECT id, "to", kind, subject, body, delivered_at, attempts, last_error,'
        " next_attempt_at FROM outbox ORDER BY id"
    )
    return [Row(*row) for row in rows]


def parse(message: dict[str, Any]) -> email.message.EmailMessage:
    parsed = email.message_from_string(message["content"], policy=email.policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def jane(client: httpx.AsyncClient, project: ProjectKeys) -> Account:
    return await sign_up(client, project.api_key, "jane", email=EMAIL, firstName="Jane")


async def signs_in(
    client: httpx.AsyncClient, project: ProjectKeys, identifier: str, password: str
) -> bool:
    body = await sign_in(client, project.api_key, identifier, password)
    return bool(body["data"]["signIn"]["token"])


async def graphql_credentials(
    client: httpx.AsyncClient, account: Account, input: dict[str, Any]
) -> None:
    body = await gql(client, UPDATE_CREDENTIALS, {"input": input}, headers=account.auth)
    assert body["data"]["updateCredentials"]["errors"] == [], body


async def rest_credentials(
    client: httpx.AsyncClient, account: Account, body: dict[str, Any]
) -> None:
    r = await client.put(
        "/api/user/v1/update", json=body, headers={"X-Access-Token": account.token}
    )
    assert r.status_code == 200, r.text
    assert r.json()["code"] == 0, r.text


async def ce_put(
    client: httpx.AsyncClient, project: ProjectKeys, account: Account, body: dict[str, Any]
) -> None:
    r = await client.put(
        "/1/ce/users",
        params={"key": project.api_key, "uniqueId": account.unique_id, "strategy": "merge"},
        json=body,
        headers=account.auth,
    )
    assert r.status_code == 200, r.text


async def update_user(
    client: httpx.AsyncClient, account: Account, data: dict[str, Any], headers: dict[str, str]
) -> None:
    body = await gql(
        client,
        UPDATE_USER,
        {"endpoint": "users", "uniqueId": account.unique_id, "data": data, "strategy": "MERGE"},
        headers=headers,
    )
    assert body["data"]["updateUser"]["errors"] == [], body


@dataclass(frozen=True)
class Change:
    """A credential change through one route: what it sends and what the notice must say."""

    run: Callable[[httpx.AsyncClient, ProjectKeys, Account], Awaitable[None]]
    to: str
    subject: str
    password: str  # the password that signs in afterwards
    email: str  # the address that signs in afterwards


CHANGES: dict[str, Change] = {
    "graphql-updateCredentials-password": Change(
        lambda c, p, a: graphql_credentials(c, a, {"password": NEW_PASSWORD}),
        EMAIL,
        "Your password changed",
        NEW_PASSWORD,
        EMAIL,
    ),
    "graphql-updateCredentials-email": Change(
        lambda c, p, a: graphql_credentials(c, a, {"email": NEW_EMAIL}),
        EMAIL,  # the OLD address: the new owner must not be the only one told
        "Your email changed",
        PASSWORD,
        NEW_EMAIL,
    ),
    "graphql-updateCredentials-both": Change(
        lambda c, p, a: graphql_credentials(
            c, a, {"email": NEW_EMAIL, "password": NEW_PASSWORD, "currentPassword": PASSWORD}
        ),
        EMAIL,
        "Your email and password changed",
        NEW_PASSWORD,
        NEW_EMAIL,
    ),
    "rest-7.2-password": Change(
        lambda c, p, a: rest_credentials(c, a, {"pwd": NEW_PASSWORD}),
        EMAIL,
        "Your password changed",
        NEW_PASSWORD,
        EMAIL,
    ),
    "rest-7.2-email": Change(
        lambda c, p, a: rest_credentials(c, a, {"eml": NEW_EMAIL}),
        EMAIL,
        "Your email changed",
        PASSWORD,
        NEW_EMAIL,
    ),
    "rest-7.1-put-password": Change(
        lambda c, p, a: ce_put(c, p, a, {"password": NEW_PASSWORD}),
        EMAIL,
        "Your password changed",
        NEW_PASSWORD,
        EMAIL,
    ),
    "graphql-updateUser-password": Change(
        lambda c, p, a: update_user(c, a, {"password": NEW_PASSWORD}, a.auth),
        EMAIL,
        "Your password changed",
        NEW_PASSWORD,
        EMAIL,
    ),
    "graphql-updateUser-password-by-master-key": Change(
        lambda c, p, a: update_user(
            c, a, {"password": NEW_PASSWORD}, {"X-Master-Key": p.master_key}
        ),
        EMAIL,
        "Your password changed",
        NEW_PASSWORD,
        EMAIL,
    ),
}


def assert_no_secret(text: str) -> None:
    for secret in (PASSWORD, NEW_PASSWORD, "$argon2"):
        assert secret not in text


# --------------------------------------------------------------------------------------------
# One notice per credential change, to the right address, delivered over SMTP
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", list(CHANGES))
async def test_credential_change_queues_one_notice_delivered_over_smtp(
    route: str,
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    sink: Sink,
) -> None:
    change = CHANGES[route]
    assert outbox_rows(db) == []  # signing up is not a change of credentials
    await change.run(client, project, jane)

    # Queued with the change, not yet delivered (no worker runs under the ASGI transport).
    [row] = outbox_rows(db)
    # An email change's notice is the "this wasn't me" mail (SPEC §11).
    kind = "email_change_revert" if "email" in change.subject else "credentials_changed"
    assert (row.to, row.kind, row.subject) == (change.to, kind, change.subject)
    assert (row.delivered_at, row.attempts, row.last_error) == (None, 0, None)
    # An email change's notice carries the "this wasn't me" link: sealed until delivered.
    [(sealed,)] = db.sql("SELECT sealed FROM outbox")
    assert bool(sealed) == ("email" in change.subject)
    queued_body = opened(row.body, sealed)
    assert "jane" in queued_body
    assert_no_secret(queued_body)
    assert sink.messages() == []

    before = now_ms()
    assert await deliver_due(services.db, sink.mailer(), services.sealer) == 1
    [row] = outbox_rows(db)
    assert row.delivered_at is not None and row.delivered_at >= before
    assert (row.attempts, row.last_error) == (1, None)
    # Delivered: a body that held a link no longer holds it, not even encrypted.
    assert row.body == (outbox.REDACTED_BODY if sealed else queued_body)

    [message] = sink.messages()
    assert message["rcpt_tos"] == [change.to]
    assert message["mail_from"] == SENDER
    parsed = parse(message)
    assert parsed["To"] == change.to
    assert parsed["From"] == SENDER
    assert parsed["Subject"] == change.subject
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and html is not None  # a plain-text and an HTML part
    assert plain.get_content().replace("\r\n", "\n").strip() == queued_body.strip()
    assert "jane" in html.get_content()
    assert_no_secret(message["content"])

    # Delivered once: a second run finds nothing due.
    assert await deliver_due(services.db, sink.mailer(), services.sealer) == 0
    assert len(sink.messages()) == 1
    # The change itself is committed: the new credentials sign in.
    assert await signs_in(client, project, change.email, change.password)


async def test_user_without_email_gets_no_notice(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB, sink: Sink
) -> None:
    john = await sign_up(client, project.api_key, "john")
    await graphql_credentials(client, john, {"password": NEW_PASSWORD})
    assert outbox_rows(db) == []
    assert await deliver_due(services.db, sink.mailer()) == 0
    assert sink.messages() == []
    assert await signs_in(client, project, "john", NEW_PASSWORD)


async def test_changes_that_are_not_credential_changes_queue_nothing(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, jane: Account
) -> None:
    body = await gql(
        client, UPDATE_ME, {"input": {"firstName": "Janet", "data": {"x": 1}}}, headers=jane.auth
    )
    assert body["data"]["updateMe"]["errors"] == [], body
    r = await client.patch("/me", json={"last_name": "Smith"}, headers=jane.auth)
    assert r.status_code == 200, r.text
    # Custom data only, and the same password again ("unchanged", §5): no credential change.
    await update_user(client, jane, {"email": "custom@example.com"}, jane.auth)
    await update_user(client, jane, {"password": PASSWORD}, jane.auth)
    await ce_put(client, project, jane, {"note": "hi", "password": PASSWORD})
    assert outbox_rows(db) == []


async def test_log_mailer_delivers_too(
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    with caplog.at_level("INFO", logger="amend.mailer"):
        assert await deliver_due(services.db, LogMailer()) == 1
    [row] = outbox_rows(db)
    assert row.delivered_at is not None and row.attempts == 1
    [record] = [r for r in caplog.records if r.name == "amend.mailer"]
    assert record.to == EMAIL  # type: ignore[attr-defined]
    assert_no_secret(record.getMessage() + str(record.__dict__))


# --------------------------------------------------------------------------------------------
# Failures: the change stays committed, the notice stays queued and is retried
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("down", ["never-started", "stopped"])
async def test_failed_delivery_is_retried_after_backoff(
    down: str,
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
    make_sink: Callable[..., Sink],
) -> None:
    port = free_port()
    if down == "stopped":
        make_sink(port).stop()
    mailer = SmtpMailer.from_url(f"smtp://127.0.0.1:{port}?starttls=off&from={SENDER}")

    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    before = now_ms()
    assert await deliver_due(services.db, mailer) == 0

    # The change is committed whatever the mailer did.
    assert await signs_in(client, project, "jane", NEW_PASSWORD)
    assert not await signs_in(client, project, "jane", PASSWORD)
    [row] = outbox_rows(db)
    assert row.delivered_at is None
    assert row.attempts == 1
    assert row.last_error and "Connection" in row.last_error
    assert row.next_attempt_at > now_ms()
    assert row.next_attempt_at >= before + delivery.backoff_ms(0)

    # The server is back, but the retry is not due yet: nothing is sent.
    server = make_sink(port)
    assert await deliver_due(services.db, mailer) == 0
    assert server.messages() == []

    # Once the retry time has passed, it is delivered (once).
    db.sql("UPDATE outbox SET next_attempt_at = 0")
    assert await deliver_due(services.db, mailer) == 1
    [row] = outbox_rows(db)
    assert row.delivered_at is not None
    assert (row.attempts, row.last_error) == (2, None)
    [message] = server.messages()
    assert message["rcpt_tos"] == [EMAIL]
    assert await deliver_due(services.db, mailer) == 0


def test_backoff_grows_and_is_capped() -> None:
    waits = [delivery.backoff_ms(n) for n in range(30)]
    assert waits[0] >= 1000
    assert all(a <= b for a, b in itertools.pairwise(waits))
    assert waits[3] > waits[0]
    assert max(waits) == delivery.MAX_BACKOFF_MS


# --------------------------------------------------------------------------------------------
# Claiming: several deliverers (instances) deliver each notice once
# --------------------------------------------------------------------------------------------


class CountingMailer:
    """An SMTP mailer that counts the sends per notice (and may be slow)."""

    def __init__(self, inner: SmtpMailer, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.sent: list[int] = []

    async def send(self, notice: outbox.Notice) -> None:
        self.sent.append(notice.id)
        await asyncio.sleep(self.delay)
        await self.inner.send(notice)


async def _queue_notices(client: httpx.AsyncClient, project: ProjectKeys, count: int) -> None:
    for n in range(count):
        account = await sign_up(client, project.api_key, f"user{n}", email=f"user{n}@example.com")
        await graphql_credentials(client, account, {"password": NEW_PASSWORD})


async def test_concurrent_deliverers_send_each_notice_once(
    client: httpx.AsyncClient, project: ProjectKeys, db: TestDB, sink: Sink
) -> None:
    await _queue_notices(client, project, 6)
    assert len(outbox_rows(db)) == 6
    # Two instances: their own connection pools on the same database.
    a, b = Database(db.url), Database(db.url)
    mailer_a = CountingMailer(sink.mailer(), delay=0.05)
    mailer_b = CountingMailer(sink.mailer(), delay=0.05)
    try:
        sent = await asyncio.gather(
            deliver_due(a, mailer_a), deliver_due(b, mailer_b), deliver_due(a, mailer_a)
        )
    finally:
        await a.dispose()
        await b.dispose()
    assert sum(sent) == 6
    sends = mailer_a.sent + mailer_b.sent
    assert sorted(sends) == sorted(set(sends))  # nobody sent a notice twice
    rows = outbox_rows(db)
    assert all(r.delivered_at is not None and r.attempts == 1 for r in rows)
    received = sorted(m["rcpt_tos"][0] for m in sink.messages())
    assert received == sorted(f"user{n}@example.com" for n in range(6))


async def test_slow_delivery_keeps_its_claims(
    client: httpx.AsyncClient,
    project: ProjectKeys,
    db: TestDB,
    sink: Sink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run that spends longer than the claim period sending earlier notices still claims
    the later ones for the full period: another instance polling meanwhile must not take a
    notice the first one is sending (each claim runs from when it is made)."""
    monkeypatch.setattr(delivery, "CLAIM_MS", 2000)
    await _queue_notices(client, project, 4)
    a, b = Database(db.url), Database(db.url)
    slow = CountingMailer(sink.mailer(), delay=1.0)
    other = CountingMailer(sink.mailer())

    async def late() -> int:
        await asyncio.sleep(2.5)  # `slow` is then sending its third notice
        return await deliver_due(b, other)

    try:
        sent = await asyncio.gather(deliver_due(a, slow), late())
    finally:
        await a.dispose()
        await b.dispose()
    sends = slow.sent + other.sent
    assert sorted(sends) == sorted(set(sends)), (slow.sent, other.sent)
    assert sum(sent) == 4
    assert len(sink.messages()) == 4


# --------------------------------------------------------------------------------------------
# STARTTLS policy: a password never goes over plain text
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("userinfo", "starttls"),
    [
        (f"{SMTP_USER}:{SMTP_PASSWORD}", "auto"),
        (f"{SMTP_USER}:{SMTP_PASSWORD}", None),  # auto is the default
        (f"{SMTP_USER}:{SMTP_PASSWORD}", "required"),
        ("", "required"),
    ],
)
async def test_no_starttls_means_no_send_when_tls_is_needed(
    userinfo: str,
    starttls: str | None,
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    make_sink: Callable[..., Sink],
) -> None:
    server = make_sink(auth=True)  # offers AUTH over plain text, no STARTTLS
    at = f"{userinfo}@" if userinfo else ""
    query = f"&starttls={starttls}" if starttls else ""
    mailer = SmtpMailer.from_url(f"smtp://{at}127.0.0.1:{server.port}?from={SENDER}{query}")
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})

    assert await deliver_due(services.db, mailer) == 0
    assert server.auths() == []  # the password was never offered to the server
    assert server.messages() == []
    [row] = outbox_rows(db)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error and "STARTTLS" in row.last_error
    assert SMTP_PASSWORD not in row.last_error


async def test_sink_would_have_seen_a_plain_text_password(
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    make_sink: Callable[..., Sink],
) -> None:
    """Control for the test above: the sink does record AUTH over plain text, which is what
    `starttls=off` (documented for local relays) does; and with no password and `auto`, mail
    goes out without TLS."""
    server = make_sink(auth=True)
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    mailer = server.mailer(starttls="off", userinfo=f"{SMTP_USER}:{SMTP_PASSWORD}")
    assert await deliver_due(services.db, mailer) == 1
    [auth] = server.auths()
    assert (auth["login"], auth["password"], auth["tls"]) == (SMTP_USER, SMTP_PASSWORD, False)
    assert len(server.messages()) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> dict[str, str]:
    """A self-signed certificate for 127.0.0.1 (trusted by nobody unless a test says so)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return {"cert": str(cert), "key": str(key)}


@pytest.mark.parametrize(
    ("userinfo", "starttls"),
    [(f"{SMTP_USER}:{SMTP_PASSWORD}", "auto"), ("", "required")],
)
async def test_starttls_to_an_unverified_server_sends_no_password(
    userinfo: str,
    starttls: str,
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    make_sink: Callable[..., Sink],
    certificate: dict[str, str],
) -> None:
    """TLS with a certificate nobody vouches for protects nothing from whoever answers in the
    middle: when TLS is needed (a password, or `required`), the server must be verified."""
    server = make_sink(auth=True, tls=certificate)
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    assert await deliver_due(services.db, server.mailer(starttls=starttls, userinfo=userinfo)) == 0
    assert server.auths() == []
    assert server.messages() == []
    [row] = outbox_rows(db)
    assert row.delivered_at is None and row.attempts == 1
    assert row.last_error and "CERTIFICATE_VERIFY_FAILED" in row.last_error


async def test_starttls_to_a_verified_server_sends_the_password_encrypted(
    client: httpx.AsyncClient,
    services: Services,
    db: TestDB,
    jane: Account,
    make_sink: Callable[..., Sink],
    certificate: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", certificate["cert"])  # trust the test certificate
    server = make_sink(auth=True, tls=certificate)
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    mailer = server.mailer(starttls="auto", userinfo=f"{SMTP_USER}:{SMTP_PASSWORD}")
    assert await deliver_due(services.db, mailer) == 1
    [auth] = server.auths()
    assert (auth["login"], auth["password"], auth["tls"]) == (SMTP_USER, SMTP_PASSWORD, True)
    [message] = server.messages()
    assert message["tls"] is True
    assert message["rcpt_tos"] == [EMAIL]


async def test_starttls_offered_is_used_without_a_password(
    client: httpx.AsyncClient,
    services: Services,
    jane: Account,
    make_sink: Callable[..., Sink],
    certificate: dict[str, str],
) -> None:
    """`auto` without a password: opportunistic encryption whenever the server offers it."""
    server = make_sink(tls=certificate)
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    assert await deliver_due(services.db, server.mailer(starttls="auto")) == 1
    [message] = server.messages()
    assert message["tls"] is True


def test_smtp_url() -> None:
    mailer = SmtpMailer.from_url(
        "smtp://relay%40corp:p%3Ass%2Fw@mail.example.com:2525?from=no-reply@example.com"
    )
    assert (mailer.host, mailer.port) == ("mail.example.com", 2525)
    assert (mailer.username, mailer.password) == ("relay@corp", "p:ss/w")
    assert (mailer.sender, mailer.starttls) == ("no-reply@example.com", "auto")
    assert SmtpMailer.from_url("smtp://localhost").port == 587
    with pytest.raises(ValueError):
        SmtpMailer.from_url("smtp://127.0.0.1:25?starttls=maybe")


# --------------------------------------------------------------------------------------------
# A served process: the background worker delivers after commit, off the request path
# --------------------------------------------------------------------------------------------


def test_served_process_delivers_after_commit_off_the_request_path(
    tmp_path: Path, db: TestDB, make_sink: Callable[..., Sink]
) -> None:
    server_smtp = make_sink(delay=1.0)  # a slow mail server
    keys = create_project(tmp_path, db.url)
    log = tmp_path / "server.log"
    with (
        serve(tmp_path, db.url, log=log, AMEND_MAILER=server_smtp.url(starttls="off")) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as c,
    ):
        r = c.post(
            "/graphql",
            json={
                "query": "mutation($i: SignUpInput!) { signUp(input: $i) { token } }",
                "variables": {
                    "i": {"username": "ann", "password": PASSWORD, "email": "ann@example.com"}
                },
            },
            headers={"X-API-Key": keys["api_key"]},
        )
        assert r.status_code == 200, r.text
        token = r.json()["data"]["signUp"]["token"]
        assert token, r.text
        started = time.monotonic()
        r = c.put(
            "/api/user/v1/update", json={"pwd": NEW_PASSWORD}, headers={"X-Access-Token": token}
        )
        assert r.status_code == 200 and r.json()["code"] == 0, r.text
        # The answer did not wait for the (slow) mail server to take the message.
        assert server_smtp.messages() == []
        deadline = time.monotonic() + 10
        while not server_smtp.messages() and time.monotonic() < deadline:
            time.sleep(0.05)
        delivered_after = time.monotonic() - started
        [message] = server_smtp.messages()
        # Kicked by the commit, not found by the 5-second poll (that would take 5 s + 1 s).
        assert delivered_after < 3.5, delivered_after
        assert message["rcpt_tos"] == ["ann@example.com"]
        assert parse(message)["Subject"] == "Your password changed"
        assert_no_secret(message["content"])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            [row] = outbox_rows(db)
            if row.delivered_at is not None:
                break
            time.sleep(0.05)
        assert row.delivered_at is not None and row.attempts == 1
    text = log.read_text(errors="replace")
    assert NEW_PASSWORD not in text and PASSWORD not in text


# --------------------------------------------------------------------------------------------
# `amend outbox [--json]`
# --------------------------------------------------------------------------------------------

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


async def test_outbox_command_lists_notices(
    tmp_path: Path,
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    jane: Account,
) -> None:
    await graphql_credentials(client, jane, {"password": NEW_PASSWORD})
    assert await deliver_due(services.db, LogMailer()) == 1
    john = await sign_up(client, project.api_key, "john", email="john@example.com")
    await rest_credentials(client, john, {"eml": "john.new@example.com"})

    out = await asyncio.to_thread(amend, tmp_path, db.url, "outbox", "--json")
    notices = json.loads(out)
    assert isinstance(notices, list) and len(notices) == 2
    keys = {"id", "to", "kind", "subject", "body", "created_at", "delivered_at", "attempts"}
    keys.add("failed_at")  # set when the mail server refused the notice for good
    for notice in notices:
        assert set(notice) == keys
        assert ISO_MS.match(notice["created_at"])
        assert notice["kind"] in ("credentials_changed", "email_change_revert")
        assert_no_secret(notice["body"])
    queued, delivered = notices  # newest first
    assert (queued["to"], queued["delivered_at"], queued["attempts"]) == (
        "john@example.com",
        None,
        0,
    )
    assert queued["subject"] == "Your email changed"
    # It holds the "this wasn't me" link: listed sealed, never as its text or ciphertext.
    assert queued["body"] == outbox.SEALED_BODY
    assert (delivered["to"], delivered["attempts"]) == (EMAIL, 1)
    assert ISO_MS.match(delivered["delivered_at"])
    assert delivered["subject"] == "Your password changed"
    assert isinstance(delivered["id"], int) and delivered["id"] < queued["id"]

    text = await asyncio.to_thread(amend, tmp_path, db.url, "outbox")
    lines = text.splitlines()
    assert len(lines) == 2
    assert "john@example.com" in lines[0] and "queued" in lines[0]
    assert EMAIL in lines[1] and "delivered" in lines[1]
