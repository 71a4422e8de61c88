"""When sessions were last used: `last_seen_at`, written in batches off the request path.

The auth check reads the session on every request but only needs to record its use at a
one-minute resolution. Writing it from the request meant a second write transaction on the
first request of every session each minute, in bursts when many sessions came due together.
Uses are collected here instead, and once a second they are written, in small transactions; a crash
loses at most that second of `last_seen_at`, never anything a client was told.
"""

from __future__ import annotations

import asyncio
import logging

from api.services import background
from api.store import Database, sessions

log = logging.getLogger("amend.activity")

FLUSH_INTERVAL_S = 1.0
# A session is recorded again once its stored `last_seen_at` is this old.
LAST_SEEN_RESOLUTION_MS = 60_000
# Sessions written per transaction. Sessions that were first used together come due
# together a minute later: 2,000 in one transaction held the loop for tens of milliseconds,
# which showed as every concurrent request's tail latency; 100 take about a millisecond.
FLUSH_BATCH = 100


class SessionActivity:
    def __init__(self, db: Database, *, interval: float = FLUSH_INTERVAL_S) -> None:
        self._db = db
        self._interval = interval
        self._due: dict[str, int] = {}  # session id -> when it was used
        self._flusher: asyncio.Task[None] | None = None

    def seen(self, session_hex: str, last_seen_at: int, now: int) -> None:
        """The session was used at `now`; `last_seen_at` is what its row says."""
        if last_seen_at >= now - LAST_SEEN_RESOLUTION_MS:
            return
        self._due[session_hex] = now
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush_later())

    async def _flush_later(self) -> None:
        try:
            await asyncio.sleep(self._interval)
        finally:
            self._flusher = None
        await self.flush()

    async def flush(self) -> None:
        """Write every use recorded so far."""
        due, self._due = self._due, {}
        uses = list(due.items())
        for start in range(0, len(uses), FLUSH_BATCH):
            batch = dict(uses[start : start + FLUSH_BATCH])
            try:
                async with self._db.write() as tx:
                    await sessions.touch_many(tx, batch)
            except Exception:
                log.warning("could not record %d session uses", len(batch), exc_info=True)
            # Requests in between: on SQLite a batch runs on the event loop's thread.
            await asyncio.sleep(0)

    async def close(self) -> None:
        await background.cancel(self._flusher)
        self._flusher = None
        await self.flush()
