"""SIGTERM finishes the requests in flight before the process exits."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.conftest import PASSWORD
from tests.db import TestDB
from tests.servers import create_project, serve


async def test_sigterm_lets_in_flight_requests_finish(tmp_path: Path, db: TestDB) -> None:
    keys = create_project(tmp_path, db.url)
    # Production hashing parameters make each sign-up take real time on the hash threads.
    with serve(
        tmp_path, db.url, AMEND_ARGON2_MEMORY_KIB="19456", AMEND_ARGON2_TIME_COST="2"
    ) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:

            async def sign_up(i: int) -> int:
                r = await client.post(
                    "/1/ce/users",
                    params={"key": keys["api_key"]},
                    json={"username": f"user{i}", "password": PASSWORD},
                )
                return r.status_code

            requests = [asyncio.create_task(sign_up(i)) for i in range(12)]
            await asyncio.sleep(0.1)  # the requests are being served
            server.process.send_signal(signal.SIGTERM)
            statuses = await asyncio.gather(*requests)
        assert statuses == [201] * 12
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
