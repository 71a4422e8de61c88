"""Change notifications between instances: PostgreSQL NOTIFY, sent when the transaction commits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import text

from api.store.postgres import dsn
from api.store.statements import Tx, prepare

CHANNEL = "amend_user_changed"
# Reconnect backoff (seconds): quick at first, so subscriptions resume soon after an outage.
RECONNECT_FIRST = 0.1
RECONNECT_MAX = 1.0
CONNECT_TIMEOUT = 2.0

log = logging.getLogger("amend.events")

_NOTIFY = prepare(text("SELECT pg_notify(:channel, :payload)"))


def notification(user_pk: int) -> dict[str, str]:
    """The parameters of the NOTIFY that announces a change of user `user_pk`."""
    return {"channel": CHANNEL, "payload": str(user_pk)}


async def notify(tx: Tx, user_pk: int) -> None:
    """On PostgreSQL, tell every instance (this one included) that the user changed; NOTIFY is
    transactional, so listeners hear it only if the change commits. No-op on SQLite."""
    if tx.is_postgres:
        await tx.run(_NOTIFY, notification(user_pk))


class Listener:
    """One LISTEN connection per instance (PostgreSQL only), calling `on_change(user_pk)`.

    LISTEN is session state, so it needs a direct connection (AMEND_DATABASE_LISTEN_URL when the
    database URL goes through a transaction pooler). When the connection is lost it reconnects
    with backoff, and then calls `on_reconnect()`: notifications sent meanwhile were missed, so
    every watcher re-reads."""

    def __init__(
        self,
        database_url: str,
        on_change: Callable[[int], None],
        on_reconnect: Callable[[], None] = lambda: None,
    ) -> None:
        self._dsn = dsn(database_url)
        self._on_change = on_change
        self._on_reconnect = on_reconnect
        self._conn: Any = None
        self._lost: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect once (failing if the database is unreachable at start), then keep the
        connection up in the background."""
        self._lost = asyncio.Event()
        await self._connect()
        self._task = asyncio.create_task(self._keep(), name="amend-listen")

    async def _connect(self) -> None:
        import asyncpg

        assert self._lost is not None
        self._lost.clear()
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT, statement_cache_size=0)
        self._conn = conn
        try:
            conn.add_termination_listener(self._mark_lost)
            await conn.add_listener(CHANNEL, self._notified)
        except BaseException:
            self._conn = None
            conn.terminate()
            raise

    def _mark_lost(self, conn: object) -> None:
        if conn is self._conn and self._lost is not None:  # (not one closed on purpose)
            self._lost.set()

    async def _keep(self) -> None:
        assert self._lost is not None
        while True:
            await self._lost.wait()
            lost, self._conn = self._conn, None
            if lost is not None:
                lost.terminate()
            log.warning("the LISTEN connection was lost; reconnecting")
            delay = RECONNECT_FIRST
            while True:
                try:
                    await self._connect()
                    break
                except Exception:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX)
            log.info("the LISTEN connection is back")
            self._on_reconnect()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._on_change(int(payload))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)
