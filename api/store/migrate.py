"""Apply Alembic migrations to a database, and compare the result with the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from api.store.engine import Database
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


async def current_revision(db: Database) -> str | None:
    def run(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(run)


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
