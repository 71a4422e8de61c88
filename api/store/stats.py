"""Counts for operational gauges."""

from __future__ import annotations

from sqlalchemy import false, func, select

from api.store.engine import Tx
from api.store.tables import outbox, signin_attempts


async def failed_signins(tx: Tx) -> int:
    stmt = select(func.count()).where(
        signin_attempts.c.succeeded == false(), signin_attempts.c.kind != "signup"
    )
    return int(await tx.scalar(stmt))


async def outbox_backlog(tx: Tx) -> int:
    stmt = select(func.count()).where(outbox.c.delivered_at.is_(None))
    return int(await tx.scalar(stmt))
