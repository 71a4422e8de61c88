"""Recovery tokens (password reset, "this wasn't me", email verification), by keyed digest."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update

from api.store.engine import Tx, insert_values
from api.store.rows import from_row
from api.store.tables import endpoints
from api.store.tables import recovery_tokens as t


@dataclass(frozen=True, slots=True)
class RecoveryToken:
    id: int
    purpose: str
    project_id: str
    user_pk: int | None
    email: str | None
    expires_at: int
    used_at: int | None


async def add(
    tx: Tx,
    *,
    digest: str,
    purpose: str,
    endpoint_id: int,
    user_pk: int | None,
    identifier: str,
    email: str | None,
    ip: str | None,
    now: int,
    expires_at: int,
) -> None:
    values = {
        "digest": digest,
        "purpose": purpose,
        "endpoint_id": endpoint_id,
        "user_pk": user_pk,
        "identifier": identifier,
        "email": email,
        "ip": ip,
        "created_at": now,
        "expires_at": expires_at,
    }
    await tx.run(*insert_values(t, values))


async def find(tx: Tx, *, digest: str, purpose: str) -> RecoveryToken | None:
    """The token with this digest (the lookup is by a keyed digest of a 256-bit secret: an
    index lookup reveals nothing a guesser could use)."""
    stmt = (
        select(t, endpoints.c.project_id)
        .join(endpoints, endpoints.c.id == t.c.endpoint_id)
        .where(t.c.digest == digest, t.c.purpose == purpose)
    )
    row = await tx.one(stmt)
    if row is None:
        return None
    return from_row(RecoveryToken, row)


async def spend(tx: Tx, token_id: int, *, now: int) -> bool:
    """Mark a token used; False when another request spent it first."""
    count = await tx.run(
        update(t).where(t.c.id == token_id, t.c.used_at.is_(None)).values(used_at=now)
    )
    return bool(count)


async def invalidate(tx: Tx, *, user_pk: int | None, purposes: tuple[str, ...], now: int) -> None:
    """Spend every live token of these purposes of the user (a no-op for None, on purpose:
    the statement runs either way)."""
    await tx.run(
        update(t)
        .where(t.c.user_pk == user_pk, t.c.purpose.in_(purposes), t.c.used_at.is_(None))
        .values(used_at=now)
    )


async def requests_since(
    tx: Tx, *, purpose: str, endpoint_id: int, identifier: str, ip: str | None, since: int
) -> tuple[int, int]:
    """How many tokens of this purpose were asked for this identifier, and from this IP."""
    count = func.count().label("n")
    recent = (t.c.purpose == purpose, t.c.created_at >= since)
    by_id = await tx.one(
        select(count).where(*recent, t.c.endpoint_id == endpoint_id, t.c.identifier == identifier)
    )
    by_ip = await tx.one(select(count).where(*recent, t.c.ip == (ip or "")))
    return (int(by_id["n"]) if by_id else 0, int(by_ip["n"]) if by_ip else 0)
