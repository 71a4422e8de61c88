"""Sign-in (and sign-up, re-authentication) attempts: the throttling ledger."""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, func, insert, or_, select, text, update

from api.core.models import SignInAttempt
from api.store.engine import Tx
from api.store.tables import signin_attempts as t


async def lock(tx: Tx, *keys: str) -> None:
    """Serialise throttle checks on the same keys until the transaction ends.

    On SQLite every write transaction already holds the database's write lock; on PostgreSQL,
    transaction-scoped advisory locks give the same guarantee across instances. Callers pass
    keys in a fixed order, so two transactions never wait on each other in a cycle."""
    if not tx.is_postgres:
        return
    for key in keys:
        await tx.conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
        )


async def record(
    tx: Tx,
    *,
    endpoint_id: int,
    user_pk: int | None,
    kind: str,
    identifier: str,
    ip: str | None,
    succeeded: bool,
    reason: str | None,
    now: int,
) -> int:
    result = await tx.conn.execute(
        insert(t)
        .values(
            endpoint_id=endpoint_id,
            user_pk=user_pk,
            kind=kind,
            identifier=identifier[:254],
            ip=ip,
            succeeded=succeeded,
            reason=reason,
            created_at=now,
        )
        .returning(t.c.id)
    )
    return int(result.scalar_one())


async def finish(tx: Tx, attempt_id: int, *, succeeded: bool, reason: str | None) -> None:
    await tx.conn.execute(
        update(t).where(t.c.id == attempt_id).values(succeeded=succeeded, reason=reason)
    )


async def _failures(tx: Tx, where: ColumnElement[bool], since: int) -> tuple[int, int | None]:
    stmt = select(func.count(), func.min(t.c.created_at)).where(
        where, t.c.succeeded == false(), t.c.created_at >= since, t.c.kind != "signup"
    )
    count, oldest = (await tx.conn.execute(stmt)).one()
    return int(count), oldest


async def failures_for_identity(
    tx: Tx, *, endpoint_id: int, identifier: str, user_pk: int | None, since: int
) -> tuple[int, int | None]:
    """Failures against this identifier, or against the user it names (by any identifier)."""
    match: ColumnElement[bool] = t.c.identifier == identifier
    if user_pk is not None:
        match = or_(match, t.c.user_pk == user_pk)
    return await _failures(tx, (t.c.endpoint_id == endpoint_id) & match, since)


async def failures_for_ip(tx: Tx, *, ip: str, since: int) -> tuple[int, int | None]:
    return await _failures(tx, t.c.ip == ip, since)


async def for_user(
    tx: Tx, *, user_pk: int, kinds: tuple[str, ...], limit: int = 20
) -> list[SignInAttempt]:
    stmt = (
        select(t)
        .where(t.c.user_pk == user_pk, t.c.kind.in_(kinds))
        .order_by(t.c.id.desc())
        .limit(limit)
    )
    return [
        SignInAttempt(
            id=r.id,
            kind=r.kind,
            identifier=r.identifier,
            succeeded=bool(r.succeeded),
            reason=r.reason,
            ip=r.ip,
            created_at=r.created_at,
        )
        for r in (await tx.conn.execute(stmt)).all()
    ]
