"""One bounded retry loop for every version-checked write."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from api.core.errors import AmendError, Reason, TransientConflict

T = TypeVar("T")

# Tries of one write in all: a lost version race or a transient refusal of the database
# (serialization failure, deadlock, busy SQLite file) is tried again up to this many times.
WRITE_ATTEMPTS = 5


async def versioned(attempt: Callable[[], Awaitable[T | None]], *, what: str) -> T:
    """Run `attempt` until it returns a result. It returns None to be tried again at once
    (it lost a race, or it read a stale copy); a `TransientConflict` is tried again after a
    short, growing pause. Past `WRITE_ATTEMPTS` tries the caller gets VERSION_CONFLICT."""
    for n in range(WRITE_ATTEMPTS):
        try:
            result = await attempt()
        except TransientConflict:
            await asyncio.sleep(0.01 * 2**n)
            continue
        if result is not None:
            return result
    raise AmendError(Reason.VERSION_CONFLICT, f"the {what} is changing too fast; try again")
