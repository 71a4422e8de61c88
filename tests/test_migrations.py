from __future__ import annotations

from sqlalchemy import text

from api.store import Database, migrate
from tests.db import BACKEND, TestDB


async def test_migrated_schema_matches_the_models(db: TestDB) -> None:
    database = Database(db.url)
    try:
        assert await migrate.current_revision(database) == migrate.head_revision()
        assert await migrate.differences(database) == []
    finally:
        await database.dispose()


async def test_migrating_again_is_a_no_op(db: TestDB) -> None:
    database = Database(db.url)
    try:
        await migrate.upgrade(database)
        assert await migrate.current_revision(database) == migrate.head_revision()
        assert await migrate.differences(database) == []
    finally:
        await database.dispose()


if BACKEND == "sqlite":

    async def test_sqlite_runs_in_wal_mode_with_foreign_keys_and_no_blocking_waits(
        db: TestDB,
    ) -> None:
        database = Database(db.url)
        try:
            for block in (database.read, database.write):
                async with block() as tx:
                    mode = await tx.scalar(text("PRAGMA journal_mode"))
                    fks = await tx.scalar(text("PRAGMA foreign_keys"))
                    busy = await tx.scalar(text("PRAGMA busy_timeout"))
                assert mode == "wal"
                assert fks == 1
                # Waits happen in asyncio (retries with backoff), never inside SQLite on the
                # event loop's thread.
                assert busy == 0

        finally:
            await database.dispose()

else:

    async def test_postgresql_database_is_utf8(db: TestDB) -> None:
        assert db.sql("SHOW server_encoding") == [("UTF8",)]
