"""Change notifications between instances: PostgreSQL NOTIFY, sent when the transaction commits."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from api.store.engine import Tx, prepare

CHANNEL = "amend_user_changed"


_NOTIFY = prepare(text("SELECT pg_notify(:channel, :payload)"))


async def notify(tx: Tx, user_pk: int) -> None:
    """On PostgreSQL, tell every instance (this one included) that the user changed; NOTIFY is
    transactional, so listeners hear it only if the change commits. No-op on SQLite."""
    if tx.is_postgres:
        await tx.run(
            _NOTIFY,
            {
                "channel": CHANNEL,
                "payload": str(user_pk),
            },
        )


class Listener:
    """One LISTEN connection per instance (PostgreSQL only), calling `on_change(user_pk)`."""

    def __init__(self, database_url: str, on_change: Callable[[int], None]) -> None:
        self._dsn = "postgresql://" + database_url.split("://", 1)[1]
        self._on_change = on_change
        self._conn: Any = None

    async def start(self) -> None:
        import asyncpg

        self._conn = await asyncpg.connect(self._dsn)
        await self._conn.add_listener(CHANNEL, self._notified)

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._on_change(int(payload))

    async def stop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
