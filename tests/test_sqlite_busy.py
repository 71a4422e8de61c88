"""SQLite runs on the event loop's thread: while another process holds the write lock, a
write waits in asyncio (the loop keeps serving) and gives up with 503 after the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from contextlib import closing

import pytest
from sqlalchemy import text

from api.core.errors import Unavailable
from api.store import Database, sqlite
from tests.db import BACKEND, TestDB

if BACKEND == "sqlite":

    class _Ticker:
        """Counts 10 ms timer ticks: proof that the loop keeps running."""

        def __init__(self) -> None:
            self.ticks = 0
            self._task = asyncio.create_task(self._run())

        async def _run(self) -> None:
            while True:
                await asyncio.sleep(0.01)
                self.ticks += 1

        def stop(self) -> None:
            self._task.cancel()

    async def test_a_write_waits_for_another_process_without_blocking_the_loop(
        db: TestDB,
    ) -> None:
        assert db.path is not None
        database = Database(db.url)
        other = sqlite3.connect(db.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process's write transaction

            async def write() -> object:
                async with database.write() as tx:
                    return await tx.scalar(text("SELECT 1"))

            ticker = _Ticker()
            task = asyncio.create_task(write())
            await asyncio.sleep(0.3)
            assert not task.done()
            other.execute("COMMIT")
            assert await asyncio.wait_for(task, 2) == 1
            ticker.stop()
            assert ticker.ticks >= 15  # about 30 in 0.3 s, had the loop never stalled
        finally:
            other.close()
            await database.dispose()

    async def test_a_write_still_locked_after_the_busy_timeout_is_unavailable(
        db: TestDB, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        assert db.path is not None
        monkeypatch.setattr(sqlite, "SQLITE_BUSY_TIMEOUT_MS", 300)
        database = Database(db.url)
        with closing(sqlite3.connect(db.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            try:
                ticker = _Ticker()
                started = time.monotonic()
                with pytest.raises(Unavailable):
                    async with database.write():
                        pass
                elapsed = time.monotonic() - started
                ticker.stop()
                assert 0.3 <= elapsed < 2
                assert ticker.ticks >= 15  # the loop kept running while the write waited
            finally:
                other.execute("ROLLBACK")
                await database.dispose()

    async def test_reads_go_on_while_another_process_writes(db: TestDB) -> None:
        assert db.path is not None
        database = Database(db.url)
        with closing(sqlite3.connect(db.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")
            other.execute("UPDATE projects SET plan = plan")
            try:
                started = time.monotonic()
                async with database.read() as tx:
                    assert await tx.scalar(text("SELECT count(*) FROM users")) == 0
                assert time.monotonic() - started < 0.5
            finally:
                other.execute("ROLLBACK")
                await database.dispose()

    async def test_a_read_while_no_write_is_under_way_holds_the_writer(db: TestDB) -> None:
        database = Database(db.url)
        try:
            async with database.read() as tx:
                assert await tx.scalar(text("SELECT 1")) == 1
                # A write now waits for the read instead of starting in its midst.
                write = asyncio.create_task(_write_plan(database))
                await asyncio.sleep(0.05)
                assert not write.done()
            await asyncio.wait_for(write, 2)
        finally:
            await database.dispose()

    async def test_a_read_during_a_write_sees_only_committed_rows(db: TestDB) -> None:
        database = Database(db.url)
        try:
            db.sql("CREATE TABLE notes (v TEXT)")
            db.sql("INSERT INTO notes VALUES ('before')")
            async with database.write() as wtx:
                await wtx.run(text("UPDATE notes SET v = 'after'"))
                async with database.read() as rtx:  # on a reader: the writer is busy
                    assert await rtx.scalar(text("SELECT v FROM notes")) == "before"
            async with database.read() as rtx:
                assert await rtx.scalar(text("SELECT v FROM notes")) == "after"
        finally:
            await database.dispose()

    async def test_a_write_inside_a_read_is_refused_instead_of_waiting_forever(
        db: TestDB,
    ) -> None:
        database = Database(db.url)
        try:
            async with database.read():
                with pytest.raises(RuntimeError, match="inside read"):
                    async with database.write():
                        pass
        finally:
            await database.dispose()

    async def _write_plan(database: Database) -> None:
        async with database.write() as tx:
            await tx.run(text("UPDATE projects SET plan = plan"))

    async def test_a_read_does_not_queue_behind_a_waiting_write(db: TestDB) -> None:
        database = Database(db.url)
        order: list[str] = []

        async def queued_write() -> None:
            async with database.write():
                order.append("write")

        try:
            async with database.write():
                waiting = asyncio.create_task(queued_write())
                await asyncio.sleep(0.05)  # now queued for the write lock
            # The lock is free again, but the write is queued for it: the read goes to a
            # reader connection at once instead of waiting behind the write.
            async with database.read() as tx:
                assert await tx.scalar(text("SELECT 1")) == 1
                order.append("read")
            await asyncio.wait_for(waiting, 2)
            assert order == ["read", "write"]
        finally:
            await database.dispose()
