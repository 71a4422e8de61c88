"""Realtime: who is watching which user, and how they hear about committed changes.

On SQLite (one machine), a change is published to this process's watchers after its
transaction commits. On PostgreSQL, the transaction sends NOTIFY and every instance's listener
connection fans the user id out to its own watchers, so a change made through any instance
reaches subscribers on all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator

from api.store import Tx
from api.store import events as store_events

log = logging.getLogger("amend.events")

QUEUE_SIZE = 16


class UserEvents:
    def __init__(self, database_url: str) -> None:
        self._watchers: dict[int, set[asyncio.Queue[None]]] = defaultdict(set)
        self._listener = (
            store_events.Listener(database_url, self._wake, self._wake_all)
            if database_url.startswith("postgresql")
            else None
        )
        self._listening = False

    async def changed(self, tx: Tx, user_pk: int, *, notified: bool = False) -> None:
        """Inside a write transaction: announce the user's change once it commits.
        `notified`: another statement of `tx` sent its NOTIFY already (PostgreSQL)."""
        if tx.is_postgres:
            if not notified:
                await store_events.notify(tx, user_pk)
        else:
            tx.after_commit.append(lambda: self._wake(user_pk))

    def _wake(self, user_pk: int) -> None:
        for queue in list(self._watchers.get(user_pk, ())):
            # A full queue already holds a wake-up: the watcher will re-read the user anyway.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def _wake_all(self) -> None:
        for user_pk in list(self._watchers):
            self._wake(user_pk)

    async def watch(self, user_pk: int) -> AsyncIterator[None]:
        """Yields once per committed change of the user (changes may coalesce)."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        self._watchers[user_pk].add(queue)
        try:
            while True:
                await queue.get()
                yield None
        finally:
            self._watchers[user_pk].discard(queue)
            if not self._watchers[user_pk]:
                del self._watchers[user_pk]

    async def start(self) -> None:
        """Open the LISTEN connection (PostgreSQL only)."""
        if self._listener is not None and not self._listening:
            await self._listener.start()
            self._listening = True

    async def stop(self) -> None:
        if self._listener is not None and self._listening:
            await self._listener.stop()
            self._listening = False
