"""The event loop an object serves, found without asking asyncio each time.

On Python 3.11 every `asyncio.get_running_loop()` (and so every `asyncio.current_task()`
without a loop) makes a `getpid()` system call, to notice a fork: in a virtual machine that
costs more than the bookkeeping it serves. An object that one loop at a time serves (a
connection pool, the HTTP edge of an app) keeps the loop it last found: while that loop runs,
it is the one running its tasks; once it has stopped (a test's loop, a server restarted in
the same process), the next look-up finds the new one.
"""

from __future__ import annotations

import asyncio
from typing import Any


class LoopRef:
    __slots__ = ("_loop",)

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def current_task(self) -> asyncio.Task[Any] | None:
        return asyncio.current_task(self.loop())
