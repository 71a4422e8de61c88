"""`amend db copy`: every table of one database into another, from one consistent snapshot.

The target is migrated first and must hold no rows; the copy is one transaction on it, so a
failure leaves it empty. Values go through SQLAlchemy's column types both ways, so JSON,
booleans and big integers read from SQLite are written to PostgreSQL as they were (and back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import Integer, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from api.store import migrate
from api.store.engine import Database
from api.store.tables import metadata

BATCH = 500


class TargetNotEmpty(Exception):
    """The target database already holds data; nothing was written."""


@dataclass
class Progress:
    """Callbacks the command line renders: a table starts (with its row count), rows done."""

    table: Callable[[str, int], None] = lambda _name, _total: None
    advance: Callable[[int], None] = lambda _rows: None


@asynccontextmanager
async def _snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection whose reads all see one committed state of the source."""
    async with db.engine.connect() as conn:
        if db.is_postgres:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        else:
            # A deferred transaction: in WAL mode its first read fixes the snapshot.
            await conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            await conn.rollback()


async def _refuse_data(conn: AsyncConnection, tables: list[Table]) -> None:
    for table in tables:
        if (await conn.execute(select(1).select_from(table).limit(1))).first() is not None:
            raise TargetNotEmpty(
                f"the target database already holds data (table {table.name}); "
                "copy only into an empty database"
            )


async def _reset_sequences(conn: AsyncConnection, tables: list[Table]) -> None:
    """PostgreSQL: serial columns continue after the copied ids."""
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) == 1 and isinstance(keys[0].type, Integer) and keys[0].autoincrement:
            key, highest = keys[0], func.max(keys[0])
            sequence = func.pg_get_serial_sequence(table.name, key.name)
            await conn.execute(
                select(func.setval(sequence, func.coalesce(highest, 1), highest.is_not(None)))
            )


async def copy_database(
    source: Database, target: Database, progress: Progress | None = None
) -> dict[str, int]:
    """Copy every table; the rows copied per table, in dependency order."""
    progress = progress or Progress()
    tables = list(metadata.sorted_tables)
    await migrate.upgrade(target)
    copied: dict[str, int] = {}
    async with _snapshot(source) as src, target.engine.connect() as dst:
        await _refuse_data(dst, tables)
        for table in tables:
            total = int((await src.execute(select(func.count()).select_from(table))).scalar_one())
            progress.table(table.name, total)
            copied[table.name] = 0
            keys = list(table.primary_key.columns)
            result = await src.stream(select(table).order_by(*keys))
            async for batch in result.mappings().partitions(BATCH):
                await dst.execute(insert(table), [dict(row) for row in batch])
                copied[table.name] += len(batch)
                progress.advance(len(batch))
        if target.is_postgres:
            await _reset_sequences(dst, tables)
        await dst.commit()
    return copied
