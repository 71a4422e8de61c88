"""Pending email changes awaiting their code (AMEND_EMAIL_CHANGE=verify)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select, update

from api.store.engine import Tx, insert_values
from api.store.tables import email_changes as t


@dataclass(frozen=True, slots=True)
class PendingEmail:
    user_pk: int
    new_email: str
    code_digest: str
    tries: int
    expires_at: int


async def replace(
    tx: Tx, *, user_pk: int, new_email: str, code_digest: str, now: int, expires_at: int
) -> None:
    """A new pending change replaces any earlier one (and its code)."""
    await tx.run(delete(t).where(t.c.user_pk == user_pk))
    values = {
        "user_pk": user_pk,
        "new_email": new_email,
        "code_digest": code_digest,
        "tries": 0,
        "created_at": now,
        "expires_at": expires_at,
    }
    await tx.run(*insert_values(t, values))


async def get(tx: Tx, user_pk: int) -> PendingEmail | None:
    stmt = select(t).where(t.c.user_pk == user_pk)
    if tx.is_postgres:
        stmt = stmt.with_for_update()
    row = await tx.one(stmt)
    if row is None:
        return None
    return PendingEmail(
        row["user_pk"], row["new_email"], row["code_digest"], row["tries"], row["expires_at"]
    )


async def count_try(tx: Tx, user_pk: int) -> None:
    await tx.run(update(t).where(t.c.user_pk == user_pk).values(tries=t.c.tries + 1))


async def remove(tx: Tx, user_pk: int) -> None:
    await tx.run(delete(t).where(t.c.user_pk == user_pk))
