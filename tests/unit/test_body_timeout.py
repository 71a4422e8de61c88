"""The body time-out: a body that does not arrive in time ends the read with `BodyTimeout`;
nothing else is turned into one, and a body read in time leaves no timer behind."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from api.core.loops import LoopRef
from api.http.edge import BodyTimeout, _bounded

BODY = {"type": "http.request", "body": b"{}", "more_body": False}


def _after(delay: float, message: dict[str, Any]) -> Any:
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(delay)
        return message

    return receive


async def test_a_body_that_arrives_in_time_is_read() -> None:
    assert await _bounded(_after(0.01, BODY), 1.0, LoopRef())() == BODY


async def test_a_body_that_does_not_arrive_in_time_is_a_body_timeout() -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(BodyTimeout):
        await _bounded(_after(10, BODY), 0.05, LoopRef())()
    assert asyncio.get_running_loop().time() - started < 1


async def test_the_deadline_covers_the_whole_body_not_each_chunk() -> None:
    chunk = {"type": "http.request", "body": b"x", "more_body": True}
    bounded = _bounded(_after(0.03, chunk), 0.08, LoopRef())
    await bounded()
    await bounded()
    with pytest.raises(BodyTimeout):
        await bounded()


async def test_a_client_that_leaves_is_a_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        await _bounded(_after(0, {"type": "http.disconnect"}), 1.0, LoopRef())()


async def test_another_cancellation_stays_a_cancellation() -> None:
    reading = asyncio.ensure_future(_bounded(_after(10, BODY), 0.05, LoopRef())())
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading


async def test_a_body_read_in_time_leaves_no_timer_to_cancel_the_request() -> None:
    async def request() -> str:
        await _bounded(_after(0, BODY), 0.02, LoopRef())()
        await asyncio.sleep(0.06)  # the response takes longer than the body time-out
        return "answered"

    assert await request() == "answered"


async def test_a_body_that_is_already_there_is_read_without_waiting_for_the_clock() -> None:
    async def ready() -> dict[str, Any]:
        return BODY

    # No timer is armed for a body that needs no wait: even a deadline already past
    # does not refuse it.
    assert await _bounded(ready, 0.0, LoopRef())() == BODY


async def test_a_read_that_yields_to_the_loop_once_is_continued() -> None:
    async def after_a_turn() -> dict[str, Any]:
        await asyncio.sleep(0)  # a bare yield, not a future
        return BODY

    assert await _bounded(after_a_turn, 1.0, LoopRef())() == BODY


async def test_a_cancellation_reaches_the_receive_it_interrupts() -> None:
    cleaned: list[bool] = []

    async def receive() -> dict[str, Any]:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)
        return BODY

    reading = asyncio.ensure_future(_bounded(receive, 5.0, LoopRef())())
    await asyncio.sleep(0.01)
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert cleaned == [True]
