"""Test databases: a fresh one per test, on SQLite (default) or PostgreSQL.

The suite runs on PostgreSQL when AMEND_TEST_POSTGRES_URL names a server's maintenance database
(`scripts/with-postgres` starts a throwaway cluster and sets it). Each test then gets its own
database, created from a migrated template; on SQLite, a copy of a migrated template file.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.store import Database, migrate

ADMIN_URL = os.environ.get("AMEND_TEST_POSTGRES_URL")
BACKEND = "postgresql" if ADMIN_URL else "sqlite"


def _conninfo(async_url: str) -> str:
    """postgresql+asyncpg://… -> postgresql://… for psycopg."""
    return "postgresql://" + async_url.split("://", 1)[1]


def _with_database(async_url: str, name: str) -> str:
    return async_url.rsplit("/", 1)[0] + "/" + name


def _admin(statement: str) -> None:
    import psycopg

    assert ADMIN_URL is not None
    with psycopg.connect(_conninfo(ADMIN_URL), autocommit=True) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


@dataclass
class TestDB:
    """One test's database: `url` for the app, `sql()` to look at or adjust rows directly."""

    __test__ = False  # a fixture value, not a test class

    url: str
    backend: str
    path: Path | None = None
    name: str | None = None

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (`?` placeholders on both backends) and commit.

        On SQLite, foreign keys are enforced as on the app's own connections (and always on
        PostgreSQL), so a `DELETE FROM users` cascades the same way on both backends."""
        if self.backend == "sqlite":
            assert self.path is not None
            with closing(sqlite3.connect(self.path, timeout=5)) as conn:
                conn.execute("PRAGMA foreign_keys = ON")
                rows = conn.execute(statement, params).fetchall()
                conn.commit()
            return rows
        import psycopg

        with psycopg.connect(_conninfo(self.url), autocommit=True) as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []


def json_column(value: Any) -> Any:
    """A JSON column's value: text from SQLite, already decoded by PostgreSQL's driver."""
    return json.loads(value) if isinstance(value, str) else value


def _migrate(url: str) -> None:
    async def run() -> None:
        db = Database(url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.dispose()

    asyncio.run(run())


def make_template(directory: Path) -> str:
    """Migrate a template once per test process; return its path or database name."""
    if BACKEND == "sqlite":
        path = directory / "template.db"
        _migrate(f"sqlite+aiosqlite:///{path}")
        return str(path)
    assert ADMIN_URL is not None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"amend_tpl_{worker}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"')
    _migrate(_with_database(ADMIN_URL, name))
    return name


def drop_template(template: str) -> None:
    if BACKEND == "postgresql":
        _admin(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')


def fresh(template: str, directory: Path) -> TestDB:
    if BACKEND == "sqlite":
        path = directory / "amend.db"
        shutil.copyfile(template, path)
        return TestDB(url=f"sqlite+aiosqlite:///{path}", backend="sqlite", path=path)
    assert ADMIN_URL is not None
    name = f"amend_t_{uuid.uuid4().hex}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return TestDB(url=_with_database(ADMIN_URL, name), backend="postgresql", name=name)


def drop(db: TestDB) -> None:
    if db.backend == "postgresql":
        _admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)')
