"""A bounded pool lends at most `limit` connections; who waits gets one as soon as one is
given back, and a wait longer than the time-out is answered `Unavailable`."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from api.core.errors import Unavailable
from api.store.blocks import BoundedPool


class Pool(BoundedPool[int]):
    def __init__(self, limit: int, timeout: float) -> None:
        super().__init__(limit=limit, timeout=timeout)
        self._numbers = itertools.count(1)

    async def _connect(self) -> int:
        return next(self._numbers)

    async def release(self, conn: int) -> None:
        await self._put_back(conn)


async def test_waiters_get_connections_as_they_are_given_back() -> None:
    pool = Pool(limit=2, timeout=2)
    first, second = await pool.acquire(), await pool.acquire()
    waiters = [asyncio.create_task(pool.acquire()) for _ in range(4)]
    await asyncio.sleep(0.01)
    assert not any(w.done() for w in waiters)  # all four wait: both connections are lent
    for conn in (first, second):
        await pool.release(conn)
    await asyncio.sleep(0.01)
    served = [w for w in waiters if w.done()]
    assert len(served) == 2 and {w.result() for w in served} == {first, second}
    for w in served:
        await pool.release(w.result())
    got = await asyncio.wait_for(asyncio.gather(*[w for w in waiters if w not in served]), 1)
    assert sorted(got) == [first, second]


async def test_a_release_with_nobody_waiting_leaves_the_connection_idle() -> None:
    pool = Pool(limit=1, timeout=0.05)
    conn = await pool.acquire()
    with pytest.raises(Unavailable):
        await pool.acquire()
    await pool.release(conn)  # the waiter gave up: nobody waits now
    assert await asyncio.wait_for(pool.acquire(), 1) == conn


async def test_a_wait_longer_than_the_time_out_is_unavailable() -> None:
    pool = Pool(limit=1, timeout=0.05)
    await pool.acquire()
    with pytest.raises(Unavailable):
        await pool.acquire()


async def test_a_connection_given_back_goes_to_the_waiter_not_a_newcomer() -> None:
    pool = Pool(limit=1, timeout=2)
    conn = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    await pool.release(conn)
    newcomer = asyncio.create_task(pool.acquire())  # arrives before the waiter runs again
    assert await asyncio.wait_for(waiter, 1) == conn
    await asyncio.sleep(0.01)
    assert not newcomer.done()
    await pool.release(conn)
    assert await asyncio.wait_for(newcomer, 1) == conn


async def test_a_closed_connection_lets_a_waiter_open_another() -> None:
    pool = Pool(limit=1, timeout=2)
    conn = await pool.acquire()
    waiter = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0.01)
    await pool._drop(conn)
    assert await asyncio.wait_for(waiter, 1) == conn + 1  # a new connection


async def test_a_waiter_that_gave_up_is_skipped() -> None:
    pool = Pool(limit=1, timeout=0.05)
    conn = await pool.acquire()
    with pytest.raises(Unavailable):
        await pool.acquire()
    assert not pool._waiters
    await pool.release(conn)
    assert pool._idle == [conn]
