"""The two things every write to an account does in its transaction: tell the watchers and
write the audit entry."""

from __future__ import annotations

from collections.abc import Iterable

from api.core.models import Actor
from api.services.context import RequestContext
from api.store import Tx, audit


async def user_changed(
    ctx: RequestContext,
    tx: Tx,
    *,
    user_pk: int,
    project_id: str,
    action: str,
    fields: Iterable[str],
    now: int,
    strategy: str | None = None,
    actor: Actor = Actor.USER,
) -> None:
    """Announce the change of account `user_pk` and audit it as done from this request."""
    # On PostgreSQL the audit row's statement carries the change's NOTIFY.
    notified = await audit.record(
        tx,
        project_id=project_id,
        user_pk=user_pk,
        action=action,
        fields=list(fields),
        strategy=strategy,
        actor=actor,
        ip=ctx.ip,
        now=now,
        notify=True,
    )
    await ctx.services.events.changed(tx, user_pk, notified=notified)
