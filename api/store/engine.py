"""The database every store function goes through: `Database.read()` and `Database.write()`
hand out a `Tx`, on SQLite (`api.store.sqlite`) or PostgreSQL (`api.store.postgres`).

Rules for store code, the same on both engines (the ones marked * are checked at run time):

1. Module-level statements are `prepare()`d: compiled once per dialect, then executed on the
   driver directly. Their parameters are named bindparams, so no `IN` list (*): spell one
   out with `OR`.
2. Column defaults are constants (*): the plan fills them in, nothing is computed per row.
3. No `write()` inside `read()` (*): on SQLite the read may hold the write lock.
4. Nothing is awaited inside `read()` or `write()` but its statements: no hashing, no network,
   no sleeping. On SQLite a read may hold the writer connection, on PostgreSQL every block is
   a transaction holding a pooled connection (and, behind PgBouncer, a server connection).
5. `read()` sees the latest commit but promises no snapshot across its statements; what must
   agree with a write is read inside that `write()`.
6. Driver errors reach store code as SQLAlchemy's `IntegrityError` (a unique or foreign-key
   violation), `TransientConflict` (retry the transaction) or `Unavailable` (answered 503).

Migrations, and statements run outside requests, go through `Database.engine` (SQLAlchemy).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from api.store import sqlite as _sqlite
from api.store.postgres import (
    RETRYABLE_SQLSTATES,
    PostgresBlock,
    PostgresPool,
    _json_dumps,
)
from api.store.statements import (
    Params,
    Prepared,
    Row,
    Statement,
    Tx,
    insert_values,
    prepare,
    prepare_once,
    value_binds,
)

__all__ = [
    "RETRYABLE_SQLSTATES",
    "Database",
    "Params",
    "Prepared",
    "Row",
    "Statement",
    "Tx",
    "insert_values",
    "prepare",
    "prepare_once",
    "retryable",
    "value_binds",
]


def _unnamed() -> str:
    """SQLAlchemy's asyncpg statements: unnamed, so none outlives its transaction."""
    return ""


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        statement_timeout: float = 1.5,
        server_prepared: bool = False,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.is_postgres = url.startswith("postgresql")
        kwargs: dict[str, Any] = {
            "echo": echo,
            "json_serializer": _json_dumps,
            "json_deserializer": orjson.loads,
            # A short wait for a free connection: under overload, answering 503 at once beats
            # queueing requests until their clients give up.
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
        }
        if self.is_sqlite:
            kwargs["connect_args"] = {"timeout": _sqlite.SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
            kwargs["connect_args"] = {
                "timeout": max(connect_timeout, 5.0),
                "statement_cache_size": 0,
                "prepared_statement_cache_size": 0,
                "prepared_statement_name_func": _unnamed,
            }
        # Migrations go through SQLAlchemy's engine; requests through the engine modules.
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.dialect = self.engine.dialect
        self._sqlite: _sqlite.SqlitePool | None = None
        self._postgres: PostgresPool | None = None
        limit = pool_size + max_overflow
        if self.is_sqlite:
            path = make_url(url).database or ":memory:"
            self._sqlite = _sqlite.SqlitePool(path, limit=limit, timeout=pool_timeout)
        else:
            self._postgres = PostgresPool(
                url,
                limit=limit,
                timeout=pool_timeout,
                connect_timeout=connect_timeout,
                statement_timeout=statement_timeout,
                server_prepared=server_prepared,
            )

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A few statements that write nothing.

        On SQLite each statement runs on its own (autocommit) and sees the latest commit: no
        read needs a snapshot across statements, and BEGIN and ROLLBACK would double the
        statements of a one-query read. On PostgreSQL the block is one transaction (see
        `api.store.postgres`)."""
        if self._sqlite is not None:
            return _sqlite.SqliteRead(self._sqlite, self.dialect)
        assert self._postgres is not None
        return PostgresBlock(self._postgres, self.dialect, write=False)

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """One write transaction: committed when the block exits normally, else rolled back."""
        if self._sqlite is not None:
            return _sqlite.SqliteWrite(self._sqlite, self.dialect)
        assert self._postgres is not None
        return PostgresBlock(self._postgres, self.dialect, write=True)

    async def dispose(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._postgres is not None:
            await self._postgres.close()
        await self.engine.dispose()


def retryable(error: DBAPIError) -> bool:
    """Whether the database asks for the transaction to be tried again."""
    orig = error.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None:  # asyncpg's own exception sits behind SQLAlchemy's adapter
        state = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state in RETRYABLE_SQLSTATES
