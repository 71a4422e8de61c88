"""Deliver queued notices after commit, retrying with backoff; never on the request path."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import smtplib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from api.core.clock import now_ms
from api.security.sealing import Sealer
from api.services import background
from api.store import Database, outbox

log = logging.getLogger("amend.mailer")

CLAIM_MS = 60_000
MAX_BACKOFF_MS = 3_600_000
POLL_SECONDS = 5.0
LATER_SECONDS = 0.05


class Mailer(Protocol):
    async def send(self, notice: outbox.Notice) -> None: ...


@dataclass(frozen=True)
class LogMailer:
    """Writes each notice to the log (development, or when mail is relayed elsewhere). A
    body holding a one-time token or code is shown only under --dev (`show_secrets`)."""

    show_secrets: bool = False

    async def send(self, notice: outbox.Notice) -> None:
        body = outbox.SEALED_BODY if notice.sealed and not self.show_secrets else notice.body
        log.info(
            "security notice",
            extra={"to": notice.to, "kind": notice.kind, "subject": notice.subject, "body": body},
        )


@dataclass(frozen=True)
class SmtpMailer:
    """`smtp://user:pass@host:port?from=…&starttls=auto|required|off`. STARTTLS is used when
    offered and required, with the server's certificate verified, whenever a password is sent
    or `starttls=required` (unless `starttls=off`, for a local relay or tests)."""

    host: str
    port: int
    username: str | None
    password: str | None = field(repr=False)  # never in a log line or traceback
    sender: str
    starttls: str

    @classmethod
    def from_url(cls, url: str) -> SmtpMailer:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        starttls = query.get("starttls", ["auto"])[0]
        if starttls not in {"auto", "required", "off"}:
            raise ValueError("starttls must be auto, required or off")
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or 587,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            sender=query.get("from", ["amend@localhost"])[0],
            starttls=starttls,
        )

    async def send(self, notice: outbox.Notice) -> None:
        await asyncio.to_thread(self._send, notice)

    def _send(self, notice: outbox.Notice) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notice.to
        message["Subject"] = notice.subject
        message.set_content(notice.body)
        message.add_alternative(html_body(notice.subject, notice.body), subtype="html")
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.ehlo()
            offered = smtp.has_extn("starttls")
            must = self.starttls == "required" or (
                self.starttls == "auto" and self.password is not None
            )
            if self.starttls != "off" and (offered or must):
                if not offered:
                    raise smtplib.SMTPException("the server does not offer STARTTLS")
                # Whenever TLS is needed, the server must prove who it is: TLS to anyone who
                # answers would hand them the password. Otherwise opportunistic, unverified.
                smtp.starttls(context=ssl.create_default_context() if must else None)
                smtp.ehlo()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.send_message(message)


_LINK = re.compile(r"https?://[^\s<>\"]+")


def html_body(subject: str, text: str) -> str:
    """The HTML part: the plain text, escaped, in paragraphs, with its links clickable."""
    paragraphs = []
    for block in text.split("\n\n"):
        escaped = html.escape(block)
        linked = _LINK.sub(lambda m: f'<a href="{m.group(0)}">{m.group(0)}</a>', escaped)
        paragraphs.append(f"<p>{linked.replace(chr(10), '<br>')}</p>")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(subject)}'
        f"</title></head><body>{''.join(paragraphs)}</body></html>"
    )


def permanent(error: Exception) -> bool:
    """A 5xx answer of the mail server (unknown mailbox, refused sender): trying again will
    not help. Everything else (4xx, connection failures) is retried."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(
            500 <= code < 600 for code, _ in error.recipients.values()
        )
    return isinstance(error, smtplib.SMTPResponseException) and 500 <= error.smtp_code < 600


def mailer_for(setting: str, *, show_secrets: bool = False) -> Mailer:
    if setting == "log":
        return LogMailer(show_secrets=show_secrets)
    return SmtpMailer.from_url(setting)


def backoff_ms(attempts: int) -> int:
    return int(min(MAX_BACKOFF_MS, 5_000 * 2 ** min(attempts, 20)))


async def deliver_due(db: Database, mailer: Mailer, sealer: Sealer | None = None) -> int:
    """Deliver what is due now; returns how many were delivered. A sealed body is opened with
    `sealer` just for the send."""
    now = now_ms()
    async with db.read() as tx:
        candidates = await outbox.due(tx, now=now)
    sent = 0
    for notice in candidates:
        # Each claim runs from when it is made: earlier sends of this run may have taken long.
        claimed_at = now_ms()
        async with db.write() as tx:
            if not await outbox.claim(tx, notice.id, now=claimed_at, until=claimed_at + CLAIM_MS):
                continue  # another instance is delivering it
        try:
            await mailer.send(_opened(notice, sealer))
        except Exception as error:  # any failure: keep it queued and try again later
            log.warning("notice %s not delivered: %s", notice.id, type(error).__name__)
            if permanent(error):
                async with db.write() as tx:
                    await outbox.refused(
                        tx, notice.id, error=f"{type(error).__name__}: {error}", now=now_ms()
                    )
                continue
            async with db.write() as tx:
                await outbox.failed(
                    tx,
                    notice.id,
                    error=f"{type(error).__name__}: {error}",
                    retry_at=now_ms() + backoff_ms(notice.attempts),
                )
            continue
        async with db.write() as tx:
            await outbox.delivered(tx, notice.id, now=now_ms(), sealed=notice.sealed)
        sent += 1
    return sent


def _opened(notice: outbox.Notice, sealer: Sealer | None) -> outbox.Notice:
    if not notice.sealed:
        return notice
    if sealer is None:
        raise ValueError("a sealed notice needs the sealer to be delivered")
    return replace(notice, body=sealer.open(notice.body))


class DeliveryWorker:
    """Runs in each instance: delivers right after a commit queued something, and polls for
    retries and for notices other instances queued."""

    def __init__(self, db: Database, mailer: Mailer, sealer: Sealer | None = None) -> None:
        self.db = db
        self.mailer = mailer
        self.sealer = sealer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._jobs: set[asyncio.Task[None]] = set()

    def kick(self) -> None:
        self._wake.set()

    def later(self, job: Callable[[], Awaitable[None]]) -> None:
        """Queue a mail after the request's answer is ready: what the answer's timing shows
        must not depend on whether there was anything to mail."""
        task = asyncio.create_task(self._later(job))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _later(self, job: Callable[[], Awaitable[None]]) -> None:
        # Let the answer go out first: on the same event loop, the job would otherwise run
        # while the response is still being written, and lengthen it for known accounts only.
        await asyncio.sleep(LATER_SECONDS)
        try:
            await job()
        except Exception:
            log.exception("a mail could not be queued")
        self.kick()

    async def settle(self) -> None:
        """Wait for every mail still being queued."""
        while self._jobs:
            await asyncio.gather(*self._jobs, return_exceptions=True)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="amend-outbox")

    async def stop(self) -> None:
        await self.settle()
        await background.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await deliver_due(self.db, self.mailer, self.sealer)
            except Exception:
                log.exception("outbox delivery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
            self._wake.clear()
