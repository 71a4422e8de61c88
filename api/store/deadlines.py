"""Statement time-outs without a timer per statement.

asyncpg's `command_timeout` arms an event-loop timer for every statement and disarms it when
the answer comes: on uvloop about 12 µs of CPU each time, more than the rest of sending a
small statement (a REST `PATCH /me` runs seven). A database that stops answering must still
be noticed within the time-out. So each connection's running statement has a deadline, and
one watchdog per pool, waking every `tick` while statements run, closes the connection of a
statement past its deadline: the statement fails as on a broken connection (`Unavailable`,
503) and the connection is discarded. A statement may run up to one tick over its time-out.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from api.core.loops import LoopRef

# The watchdog stops after this many ticks without a running statement (and starts again
# with the next one).
_IDLE_TICKS = 20


class Terminable(Protocol):
    def terminate(self) -> None: ...


class Deadlines:
    __slots__ = ("_due", "_loops", "_task", "tick", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(0.1, timeout / 4)
        self._due: dict[Terminable, float] = {}  # connection -> when its statement is overdue
        self._loops = LoopRef()
        self._task: asyncio.Task[None] | None = None

    def start(self, conn: Terminable) -> None:
        """A statement starts on `conn`: it must be answered within the time-out."""
        loop = self._loops.loop()
        self._due[conn] = loop.time() + self.timeout
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            self._task = loop.create_task(self._watch())

    def finish(self, conn: Terminable) -> None:
        """The statement on `conn` has been answered (or has failed)."""
        self._due.pop(conn, None)

    async def _watch(self) -> None:
        due, idle = self._due, 0
        while idle < _IDLE_TICKS:
            await asyncio.sleep(self.tick)
            if not due:
                idle += 1
                continue
            idle = 0
            now = self._loops.loop().time()
            for conn, deadline in list(due.items()):
                if deadline <= now:
                    del due[conn]
                    conn.terminate()

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        self._due.clear()
