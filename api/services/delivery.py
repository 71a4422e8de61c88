"""Deliver queued notices after commit, retrying with backoff; never on the request path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from api.core.clock import now_ms
from api.services import background
from api.store import Database, outbox

log = logging.getLogger("amend.mailer")

CLAIM_MS = 60_000
MAX_BACKOFF_MS = 3_600_000
POLL_SECONDS = 5.0


class Mailer(Protocol):
    async def send(self, notice: outbox.Notice) -> None: ...


class LogMailer:
    """Writes each notice to the log (development, or when mail is relayed elsewhere)."""

    async def send(self, notice: outbox.Notice) -> None:
        log.info(
            "security notice",
            extra={
                "to": notice.to,
                "kind": notice.kind,
                "subject": notice.subject,
                "body": notice.body,
            },
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


def mailer_for(setting: str) -> Mailer:
    if setting == "log":
        return LogMailer()
    return SmtpMailer.from_url(setting)


def backoff_ms(attempts: int) -> int:
    return int(min(MAX_BACKOFF_MS, 5_000 * 2 ** min(attempts, 20)))


async def deliver_due(db: Database, mailer: Mailer) -> int:
    """Deliver what is due now; returns how many were delivered."""
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
            await mailer.send(notice)
        except Exception as error:  # any failure: keep it queued and try again later
            log.warning("notice %s not delivered: %s", notice.id, type(error).__name__)
            async with db.write() as tx:
                await outbox.failed(
                    tx,
                    notice.id,
                    error=f"{type(error).__name__}: {error}",
                    retry_at=now_ms() + backoff_ms(notice.attempts),
                )
            continue
        async with db.write() as tx:
            await outbox.delivered(tx, notice.id, now=now_ms())
        sent += 1
    return sent


class DeliveryWorker:
    """Runs in each instance: delivers right after a commit queued something, and polls for
    retries and for notices other instances queued."""

    def __init__(self, db: Database, mailer: Mailer) -> None:
        self.db = db
        self.mailer = mailer
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="amend-outbox")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await deliver_due(self.db, self.mailer)
            except Exception:
                log.exception("outbox delivery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=POLL_SECONDS)
            self._wake.clear()
