"""Engine, connections and transactions.

SQLite allows one writer at a time. Rather than let connections queue on its file lock
(which drives tail latency to seconds), write transactions are serialised in process by an
asyncio lock and start with `BEGIN IMMEDIATE`, so a transaction that holds the lock also
holds the database's write lock from its first statement. Other processes sharing the file
(`--workers N`) still meet the busy timeout. PostgreSQL transactions need neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from api.core.errors import TransientConflict, Unavailable

SQLITE_BUSY_TIMEOUT_MS = 5000
_WRITE = "amend_write"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Tx:
    """A connection inside one transaction; store functions take it as their first argument."""

    __slots__ = ("after_commit", "conn", "is_postgres")

    def __init__(self, conn: AsyncConnection, *, is_postgres: bool) -> None:
        self.conn = conn
        self.is_postgres = is_postgres
        # Run once the transaction has committed (never after a rollback).
        self.after_commit: list[Callable[[], None]] = []

    def run_after_commit(self) -> None:
        for callback in self.after_commit:
            callback()


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        pool_timeout: float = 2.0,
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
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self._write_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncConnection]:
        conn = self.engine.connect()
        try:
            await conn.start()
        except PoolTimeout:
            raise Unavailable("no database connection is free") from None
        try:
            yield conn
        finally:
            await conn.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._connection() as conn:
            yield Tx(conn, is_postgres=self.is_postgres)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write transaction: committed when the block exits normally, else rolled back."""
        if not self.is_sqlite:
            try:
                async with self._connection() as conn:
                    async with conn.begin():
                        tx = Tx(conn, is_postgres=self.is_postgres)
                        yield tx
                    tx.run_after_commit()
            except DBAPIError as error:
                if retryable(error):
                    raise TransientConflict(str(error.orig)) from error
                raise
            return
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        async with self._write_lock, self._connection() as conn:
            conn = await conn.execution_options(**{_WRITE: True})
            async with conn.begin():
                tx = Tx(conn, is_postgres=False)
                yield tx
        tx.run_after_commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


# PostgreSQL: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def retryable(error: DBAPIError) -> bool:
    """Whether the database asks for the transaction to be tried again."""
    orig = error.orig
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None:  # asyncpg's own exception sits behind SQLAlchemy's adapter
        state = getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    return state in RETRYABLE_SQLSTATES


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit
        # transactions cannot express BEGIN IMMEDIATE).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
