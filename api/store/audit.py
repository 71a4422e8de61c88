"""Audit events: who changed which fields of a user, how, from where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, insert, select

from api.core.models import Actor, AuditEvent
from api.store import events
from api.store.engine import Tx, prepare, value_binds
from api.store.tables import audit_events as t

_INSERT_ROW = insert(t).values(value_binds(t, [c.name for c in t.c if c.name != "id"]))
_INSERT = prepare(_INSERT_ROW)
# PostgreSQL: the row, and the NOTIFY that announces the user's change (`api.store.events`),
# in one statement: a data-modifying WITH always runs, whatever the outer query reads.
_INSERT_NOTIFYING = prepare(
    select(func.pg_notify(bindparam("channel"), bindparam("payload"))).add_cte(
        _INSERT_ROW.cte("recorded")
    )
)


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
    notify: bool = False,
) -> bool:
    """Write the audit row. With `notify`, on PostgreSQL the same statement sends the NOTIFY
    `events.notify` would send for `user_pk` (a round trip fewer per change); True when it
    did, False on SQLite, which has no NOTIFY."""
    params = {
        "v_project_id": project_id,
        "v_user_pk": user_pk,
        "v_action": action,
        "v_fields": sorted(fields),
        "v_strategy": strategy,
        "v_actor": actor.value,
        "v_ip": ip,
        "v_at": now,
    }
    if notify and tx.is_postgres:
        await tx.run(_INSERT_NOTIFYING, {**params, **events.notification(user_pk)})
        return True
    await tx.run(_INSERT, params)
    return False


async def credential_changes_since(tx: Tx, *, user_pk: int, since: int) -> tuple[int, int | None]:
    """Changes of email or password by any route (their audit events name those fields),
    email changes waiting for their code (`pending_email`) included: each mails a code to an
    address of the caller's choosing and tells whether that address is taken.

    Sign-up sets the first password and email; it is not a change of them. The fields of an
    `update_user` event name the document's keys, where `email` is only a custom field (§5)."""
    stmt = select(t.c.action, t.c.fields, t.c.at).where(
        t.c.user_pk == user_pk, t.c.at >= since, t.c.action != "sign_up"
    )
    times = [
        r["at"]
        for r in await tx.all(stmt)
        if "password" in r["fields"]
        or "pending_email" in r["fields"]
        or ("email" in r["fields"] and r["action"] != "update_user")
    ]
    return len(times), (min(times) if times else None)


async def for_user(
    tx: Tx, *, user_pk: int, limit: int, before_id: int | None = None
) -> list[AuditEvent]:
    stmt = select(t).where(t.c.user_pk == user_pk)
    if before_id is not None:
        stmt = stmt.where(t.c.id < before_id)
    rows = await tx.all(stmt.order_by(t.c.id.desc()).limit(limit))
    return [
        AuditEvent(
            id=r["id"],
            action=r["action"],
            fields=tuple(r["fields"]),
            strategy=r["strategy"],
            actor=Actor(r["actor"]),
            ip=r["ip"],
            at=r["at"],
        )
        for r in rows
    ]
