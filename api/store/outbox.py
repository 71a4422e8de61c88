"""The outbox of security notices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, or_, select, update

from api.store.engine import Tx, insert_values
from api.store.rows import from_row
from api.store.tables import outbox as t


@dataclass(frozen=True, slots=True)
class Notice:
    id: int
    to: str
    kind: str
    subject: str
    body: str
    created_at: int
    delivered_at: int | None
    attempts: int
    last_error: str | None
    sealed: bool = False  # `body` is encrypted: it holds a one-time token or code
    failed_at: int | None = None  # refused for good by the mail server; not retried


SEALED_BODY = "[sealed: this message holds a one-time link or code]"
REDACTED_BODY = "[redacted after delivery: this message held a one-time link or code]"


def _notice(row: Mapping[str, Any]) -> Notice:
    return from_row(Notice, row)


async def queue(
    tx: Tx,
    *,
    user_pk: int | None,
    to: str,
    kind: str,
    subject: str,
    body: str,
    now: int,
    sealed: bool = False,
) -> None:
    """`sealed`: `body` is already encrypted (it holds a secret)."""
    values = {
        "user_pk": user_pk,
        "to": to,
        "kind": kind,
        "subject": subject,
        "body": body,
        "created_at": now,
        "next_attempt_at": now,
        "sealed": sealed,
    }
    await tx.run(*insert_values(t, values))


async def due(tx: Tx, *, now: int, limit: int = 20) -> list[Notice]:
    stmt = (
        select(t)
        .where(
            t.c.delivered_at.is_(None),
            t.c.failed_at.is_(None),
            t.c.next_attempt_at <= now,
            or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
        )
        .order_by(t.c.id)
        .limit(limit)
    )
    return [_notice(r) for r in await tx.all(stmt)]


async def claim(tx: Tx, notice_id: int, *, now: int, until: int) -> bool:
    """Take a notice for delivery; False when another instance holds it."""
    count = await tx.run(
        update(t)
        .where(
            and_(
                t.c.id == notice_id,
                t.c.delivered_at.is_(None),
                or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
            )
        )
        .values(claimed_until=until)
    )
    return bool(count)


async def delivered(tx: Tx, notice_id: int, *, now: int, sealed: bool = False) -> None:
    """A delivered notice that held a secret no longer holds it, not even encrypted."""
    values: dict[str, Any] = {
        "delivered_at": now,
        "attempts": t.c.attempts + 1,
        "claimed_until": None,
        "last_error": None,
    }
    if sealed:
        values.update(body=REDACTED_BODY, sealed=False)
    await tx.run(update(t).where(t.c.id == notice_id).values(**values))


async def refused(tx: Tx, notice_id: int, *, error: str, now: int) -> None:
    """The mail server refused it for good (a 5xx answer): never tried again."""
    await tx.run(
        update(t)
        .where(t.c.id == notice_id)
        .values(
            attempts=t.c.attempts + 1, failed_at=now, claimed_until=None, last_error=error[:500]
        )
    )


async def failed(tx: Tx, notice_id: int, *, error: str, retry_at: int) -> None:
    await tx.run(
        update(t)
        .where(t.c.id == notice_id)
        .values(
            attempts=t.c.attempts + 1,
            next_attempt_at=retry_at,
            claimed_until=None,
            last_error=error[:500],
        )
    )


async def listing(tx: Tx, *, limit: int = 500) -> list[Notice]:
    """For people to read: a sealed body is shown as such, never as its ciphertext."""
    stmt = select(t).order_by(t.c.id.desc()).limit(limit)
    found = [_notice(r) for r in await tx.all(stmt)]
    return [replace(n, body=SEALED_BODY) if n.sealed else n for n in found]
