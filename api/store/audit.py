"""Audit events: who changed which fields of a user, how, from where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert, select

from api.core.models import Actor, AuditEvent
from api.store.engine import Tx
from api.store.tables import audit_events as t


async def record(
    tx: Tx,
    *,
    project_id: str,
    user_pk: int,
    action: str,
    fields: Sequence[str],
    strategy: str | None,
    actor: Actor,
    ip: str | None,
    now: int,
) -> None:
    await tx.conn.execute(
        insert(t).values(
            project_id=project_id,
            user_pk=user_pk,
            action=action,
            fields=sorted(fields),
            strategy=strategy,
            actor=actor.value,
            ip=ip,
            at=now,
        )
    )


async def credential_changes_since(tx: Tx, *, user_pk: int, since: int) -> tuple[int, int | None]:
    """Changes of email or password by any route (their audit events name those fields).

    Sign-up sets the first password and email; it is not a change of them. The fields of an
    `update_user` event name the document's keys, where `email` is only a custom field (§5)."""
    stmt = select(t.c.action, t.c.fields, t.c.at).where(
        t.c.user_pk == user_pk, t.c.at >= since, t.c.action != "sign_up"
    )
    times = [
        at
        for action, fields, at in (await tx.conn.execute(stmt)).all()
        if "password" in fields or ("email" in fields and action != "update_user")
    ]
    return len(times), (min(times) if times else None)


async def for_user(
    tx: Tx, *, user_pk: int, limit: int, before_id: int | None = None
) -> list[AuditEvent]:
    stmt = select(t).where(t.c.user_pk == user_pk)
    if before_id is not None:
        stmt = stmt.where(t.c.id < before_id)
    rows = (await tx.conn.execute(stmt.order_by(t.c.id.desc()).limit(limit))).all()
    return [
        AuditEvent(
            id=r.id,
            action=r.action,
            fields=tuple(r.fields),
            strategy=r.strategy,
            actor=Actor(r.actor),
            ip=r.ip,
            at=r.at,
        )
        for r in rows
    ]
