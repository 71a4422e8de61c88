from __future__ import annotations

from pathlib import Path

from api.store import Database, migrate


async def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
        assert await migrate.differences(db) == []
    finally:
        await db.dispose()


async def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        await migrate.upgrade(db)
        await migrate.upgrade(db)
        assert await migrate.current_revision(db) == migrate.head_revision()
    finally:
        await db.dispose()


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    try:
        async with db.read() as tx:
            mode = (await tx.conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            fks = (await tx.conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
            busy = (await tx.conn.exec_driver_sql("PRAGMA busy_timeout")).scalar()
        assert mode == "wal"
        assert fks == 1
        assert busy and busy > 0
    finally:
        await db.dispose()
