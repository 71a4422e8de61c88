"""Apply Alembic migrations to a database, and compare the result with the models."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from api.store.engine import Database, prepare
from api.store.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(db: Database) -> None:
    def run(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "head")

    if db.is_sqlite:
        # WAL is a property of the file: set once here, while nothing else uses it, so that
        # serving connections never need the database to themselves to switch it.
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    async with db.engine.connect() as conn:
        await conn.run_sync(run)
        await conn.commit()


_VERSION = prepare(text("SELECT version_num FROM alembic_version"))


async def current_revision(db: Database) -> str | None:
    """Through the request path (and its time-outs): `/readyz` must answer while the
    database hangs. None on a database never migrated."""
    try:
        async with db.read() as tx:
            revision = await tx.scalar(_VERSION)
    except (sqlite3.OperationalError, asyncpg.UndefinedTableError):
        return None
    return None if revision is None else str(revision)


async def differences(db: Database) -> list[Any]:
    """What autogenerate would change: empty when the migrated schema matches the models."""

    def run(connection: Connection) -> list[Any]:
        ctx = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


async def autogenerate(db: Database, message: str) -> None:
    """Developer helper: write a new revision from the model changes."""

    def run(connection: Connection) -> None:
        command.revision(alembic_config(connection), message=message, autogenerate=True)

    async with db.engine.connect() as conn:
        await conn.run_sync(run)
