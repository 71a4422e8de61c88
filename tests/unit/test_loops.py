"""`LoopRef` answers what `asyncio.get_running_loop()` and `asyncio.current_task()` would."""

from __future__ import annotations

import asyncio

import uvloop

from api.core.loops import LoopRef


async def test_it_finds_the_running_loop_and_task() -> None:
    ref = LoopRef()
    assert ref.loop() is asyncio.get_running_loop()
    assert ref.current_task() is asyncio.current_task()

    async def other() -> bool:
        return ref.current_task() is asyncio.current_task()

    assert await asyncio.ensure_future(other())


def test_a_loop_started_after_the_last_one_stopped_is_found() -> None:
    ref = LoopRef()

    async def seen() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
        return ref.loop(), asyncio.get_running_loop()

    for run in (asyncio.run, uvloop.run, asyncio.run):
        found, running = run(seen())
        assert found is running
