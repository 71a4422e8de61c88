from __future__ import annotations

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

    async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: TestDB) -> None:
        database = Database(db.url)
        try:
            async with database.read() as tx:
                mode = (await tx.conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
                fks = (await tx.conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
                busy = (await tx.conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
            assert mode == "wal"
            assert fks == 1
            assert busy and busy > 0
        finally:
            await database.dispose()

else:

    async def test_postgresql_database_is_utf8(db: TestDB) -> None:
        assert db.sql("SHOW server_encoding") == [("UTF8",)]
