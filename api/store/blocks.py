"""What both engines' `read()` and `write()` blocks share: a bounded pool of connections, and
the rule that a task never starts a `write()` inside its own `read()`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from api.core.errors import Unavailable
from api.core.loops import LoopRef

C = TypeVar("C")

# The task inside `Database.read()`, set while it is: `write()` refuses to start in that task
# (a task it creates inherits the variable, and may write: it does not hold the read).
_IN_READ: ContextVar[asyncio.Task[Any] | None] = ContextVar("amend_in_read", default=None)


class ReadMark:
    """Marks `task` (the current one) as inside a `read()` block until `clear()`."""

    __slots__ = ("_token",)

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self._token = _IN_READ.set(task)

    def clear(self) -> None:
        _IN_READ.reset(self._token)


def refuse_write_inside_read() -> None:
    task = _IN_READ.get()
    if task is not None and task is asyncio.current_task():
        # On SQLite it would wait for the write lock its own read holds; on PostgreSQL it
        # would hold two pooled connections at once.
        raise RuntimeError("write() inside read(): finish the read first")


class BoundedPool(Generic[C]):
    """Up to `limit` connections, idle ones handed out first; a wait for one is bounded by
    `timeout` and then answered `Unavailable` (503). An engine says how to open a connection
    and whether an idle one is still usable; it gives a connection back with `_put_back`,
    or `_drop`s one it closed.

    A connection given back while others wait goes to the one that has waited longest
    (never through the idle list, where a request arriving just then would take it first
    and leave the waiter to wait again: under load, that made the slowest requests several
    times slower than the median)."""

    def __init__(self, *, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._idle: list[C] = []
        self._open = 0
        # Acquirers waiting, oldest first: each is handed a connection, or None for a place
        # to open one.
        self._waiters: deque[asyncio.Future[C | None]] = deque()
        self._loops = LoopRef()
        # `current_task()` without asyncio's per-call loop look-up (see `api.core.loops`).
        self.current_task = self._loops.current_task

    async def _connect(self) -> C:
        raise NotImplementedError

    def _usable(self, conn: C) -> bool:
        return True

    def _forget(self, conn: C) -> None:
        """`conn` is closed and leaves the pool."""

    async def acquire(self) -> C:
        while True:
            while self._idle:
                conn = self._idle.pop()
                if self._usable(conn):
                    return conn
                self._forget(conn)
                self._open -= 1
            if self._open < self.limit:
                self._open += 1
                try:
                    return await self._connect()
                except BaseException:
                    self._open -= 1
                    self._hand_over(None)
                    raise
            handed = await self._wait()
            if handed is None:
                continue  # a connection was closed: its place is free to open another
            if self._usable(handed):
                return handed
            self._forget(handed)
            self._open -= 1

    async def _wait(self) -> C | None:
        waiter: asyncio.Future[C | None] = self._loops.loop().create_future()
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(waiter, self.timeout)
        except TimeoutError:
            raise Unavailable("no database connection is free") from None
        finally:
            if not waiter.done() or waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)

    def _hand_over(self, conn: C | None) -> bool:
        """Give `conn` (None: a free place) to the longest waiter; False if none waits."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    async def _put_back(self, conn: C) -> None:
        if not self._hand_over(conn):
            self._idle.append(conn)

    async def _drop(self, conn: C) -> None:
        self._forget(conn)
        self._open -= 1
        self._hand_over(None)
