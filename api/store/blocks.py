"""What both engines' `read()` and `write()` blocks share: a bounded pool of connections, and
the rule that a task never starts a `write()` inside its own `read()`."""

from __future__ import annotations

import asyncio
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
    or `_drop`s one it closed."""

    def __init__(self, *, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self._idle: list[C] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None
        self._waiting = 0  # acquirers waiting for a connection to be freed
        # `current_task()` without asyncio's per-call loop look-up (see `api.core.loops`).
        self.current_task = LoopRef().current_task

    async def _connect(self) -> C:
        raise NotImplementedError

    def _usable(self, conn: C) -> bool:
        return True

    def _forget(self, conn: C) -> None:
        """`conn` is closed and leaves the pool."""

    async def acquire(self) -> C:
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
                await self._notify()
                raise
        if self._freed is None:
            self._freed = asyncio.Condition()
        self._waiting += 1
        try:
            async with self._freed:
                await asyncio.wait_for(
                    self._freed.wait_for(lambda: bool(self._idle) or self._open < self.limit),
                    self.timeout,
                )
        except TimeoutError:
            raise Unavailable("no database connection is free") from None
        finally:
            self._waiting -= 1
        # Nothing is awaited before the idle list is read again: no other task runs between.
        return await self.acquire()

    async def _put_back(self, conn: C) -> None:
        self._idle.append(conn)
        await self._notify()

    async def _drop(self, conn: C) -> None:
        self._forget(conn)
        self._open -= 1
        await self._notify()

    async def _notify(self) -> None:
        # (Only when someone waits: taking the condition's lock costs a coroutine or two,
        # on every release once the pool has been exhausted.)
        if self._freed is not None and self._waiting:
            async with self._freed:
                self._freed.notify()
