"""On PostgreSQL a statement that outlives the statement time-out fails as `Unavailable`
(503) within about that time, its connection is discarded, and the pool serves again."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from api.core.errors import Unavailable
from api.store.engine import Database
from scripts import pgcluster


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    with pgcluster.cluster() as pg:
        db = Database(pg.url, pool_size=2, statement_timeout=0.3, server_prepared=True)
        try:
            yield db
        finally:
            await db.dispose()


async def test_a_statement_past_the_time_out_fails_unavailable_and_the_pool_serves_again(
    database: Database,
) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        async with database.read() as tx:
            await tx.all(text("SELECT pg_sleep(5)"))
    assert 0.3 <= time.monotonic() - started < 0.3 + 0.5
    async with database.read() as tx:
        assert await tx.scalar(text("SELECT 1")) == 1


async def test_a_commit_past_the_time_out_fails_unavailable(database: Database) -> None:
    started = time.monotonic()
    with pytest.raises(Unavailable):
        async with database.write() as tx:
            # Each statement answers at once; the deferred trigger runs (and sleeps) at COMMIT.
            for statement in (
                "CREATE FUNCTION pg_temp.slow() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$",
                "CREATE TEMPORARY TABLE t (x int)",
                "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON t DEFERRABLE INITIALLY DEFERRED "
                "FOR EACH ROW EXECUTE FUNCTION pg_temp.slow()",
                "INSERT INTO t VALUES (1)",
            ):
                await tx.run(text(statement))
            started = time.monotonic()
    assert time.monotonic() - started < 0.3 + 0.5
    async with database.read() as tx:
        assert await tx.scalar(text("SELECT 1")) == 1
