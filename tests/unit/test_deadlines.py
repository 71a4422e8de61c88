"""A statement past its time-out has its connection closed by the pool's one watchdog."""

from __future__ import annotations

import asyncio

from api.store.deadlines import Deadlines


class Conn:
    def __init__(self) -> None:
        self.terminated_at: float | None = None

    def terminate(self) -> None:
        self.terminated_at = asyncio.get_running_loop().time()


async def test_a_statement_past_its_deadline_has_its_connection_closed_within_a_tick() -> None:
    deadlines = Deadlines(0.2)
    conn = Conn()
    started = asyncio.get_running_loop().time()
    deadlines.start(conn)
    await asyncio.sleep(0.2 + 2 * deadlines.tick)
    assert conn.terminated_at is not None
    assert 0.2 <= conn.terminated_at - started <= 0.2 + deadlines.tick + 0.05
    deadlines.close()


async def test_an_answered_statement_is_never_closed() -> None:
    deadlines = Deadlines(0.1)
    answered, running = Conn(), Conn()
    deadlines.start(answered)
    deadlines.start(running)
    deadlines.finish(answered)
    await asyncio.sleep(0.1 + 2 * deadlines.tick)
    assert answered.terminated_at is None and running.terminated_at is not None
    deadlines.close()


async def test_each_statement_gets_the_whole_time_out() -> None:
    deadlines = Deadlines(0.2)
    conn = Conn()
    for _ in range(3):  # statements one after another on one connection, each within time
        deadlines.start(conn)
        await asyncio.sleep(0.12)
        deadlines.finish(conn)
    assert conn.terminated_at is None
    deadlines.close()


async def test_the_watchdog_stops_when_idle_and_starts_with_the_next_statement() -> None:
    deadlines = Deadlines(0.04)  # ticks of 10 ms
    conn = Conn()
    deadlines.start(conn)
    deadlines.finish(conn)
    watchdog = deadlines._task
    assert watchdog is not None
    await asyncio.wait_for(watchdog, 2)  # stops on its own after idle ticks
    deadlines.start(conn)
    assert deadlines._task is not None and deadlines._task is not watchdog
    await asyncio.sleep(0.04 + 2 * deadlines.tick)
    assert conn.terminated_at is not None
    deadlines.close()
