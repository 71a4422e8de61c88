"""PostgreSQL: asyncpg directly, with the same precompiled statements as SQLite.

Built to work through PgBouncer in transaction pooling mode, where consecutive transactions of
one client connection may run on different server connections. So nothing outlives a
transaction on the server:

- statements are unnamed (asyncpg's statement cache is off): a named prepared statement would
  live on one server connection, and asyncpg's names (`__asyncpg_stmt_1__`) collide between
  processes sharing one;
- every `read()` and `write()` block is one transaction: an unnamed statement is parsed and
  executed in two round trips, and only a transaction keeps both on one server connection;
- connections set nothing on the session (no `SET`, no startup parameters beyond the user
  and database).

Every connect and statement has a time-out, so a database that stops answering turns into
`Unavailable` (503) within seconds instead of requests that hang; a connection that failed or
timed out is closed, never reused, and idle connections the server has closed are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg
import orjson
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from api.core.errors import TransientConflict, Unavailable
from api.store.blocks import BoundedPool, ReadMark, refuse_write_inside_read
from api.store.deadlines import Deadlines
from api.store.statements import Params, PlannedTx, Prepared, Row, Statement, Tx

T = TypeVar("T")

# PostgreSQL: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# The server going away or refusing work: admin_shutdown, crash_shutdown, cannot_connect_now,
# query_canceled (our statement time-out), too_many_connections.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57014", "53300"})


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_encode(value: Any) -> str:
    """The codec's encoder: a JSON column's bind processor has already serialised the value."""
    return value if isinstance(value, str) else _json_dumps(value)


def dsn(url: str) -> str:
    """`postgresql+asyncpg://…` (SQLAlchemy's form) -> `postgresql://…` (libpq's)."""
    return "postgresql://" + url.split("://", 1)[1]


def translate(error: BaseException, sql: str = "", params: Sequence[Any] = ()) -> BaseException:
    """The store's exception for a driver error: IntegrityError, TransientConflict or
    Unavailable; anything else unchanged."""
    state = getattr(error, "sqlstate", None)
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(sql, params, error)
    if state in RETRYABLE_SQLSTATES:
        return TransientConflict(str(error))
    if state in _UNAVAILABLE_SQLSTATES or broken(error):
        return Unavailable("the database is unreachable")
    return error


def broken(error: BaseException) -> bool:
    """Whether the connection the error came from can no longer be trusted."""
    return (
        isinstance(
            error,
            OSError
            | TimeoutError
            | asyncpg.InterfaceError
            | asyncpg.PostgresConnectionError
            | asyncpg.exceptions.InternalClientError,
        )
        or getattr(error, "sqlstate", None) in _UNAVAILABLE_SQLSTATES
    )


class PostgresPool(BoundedPool[asyncpg.Connection]):
    """Up to `limit` connections; a wait for a free one or for a connect is bounded."""

    def __init__(
        self,
        url: str,
        *,
        limit: int,
        timeout: float,
        connect_timeout: float,
        statement_timeout: float,
        server_prepared: bool = False,
    ) -> None:
        super().__init__(limit=limit, timeout=timeout)
        self.dsn = dsn(url)
        # Direct connections only (no transaction pooler): named statements, cached per
        # connection, run in one round trip, and reads need no transaction around them.
        self.server_prepared = server_prepared
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self.deadlines = Deadlines(statement_timeout)
        # Every connection open now, idle or lent out: closing the pool closes them all.
        self._every: set[asyncpg.Connection] = set()

    async def _connect(self) -> asyncpg.Connection:
        try:
            conn = await asyncpg.connect(
                self.dsn,
                timeout=self.connect_timeout,
                statement_cache_size=256 if self.server_prepared else 0,
            )
        except Exception as error:
            raise Unavailable("cannot connect to the database") from error
        try:
            # The codecs' type look-up is a statement too: inside a transaction, like all.
            async with asyncio.timeout(self.statement_timeout), conn.transaction():
                for name in ("json", "jsonb"):
                    await conn.set_type_codec(
                        name, encoder=_json_encode, decoder=orjson.loads, schema="pg_catalog"
                    )
        except BaseException as error:  # a cancelled set-up leaves no connection behind
            conn.terminate()
            if isinstance(error, Exception):
                raise translate(error) from error
            raise
        self._every.add(conn)
        return conn

    def _usable(self, conn: asyncpg.Connection) -> bool:
        return not conn.is_closed()

    def _forget(self, conn: asyncpg.Connection) -> None:
        self._every.discard(conn)

    async def release(self, conn: asyncpg.Connection, *, discard: bool = False) -> None:
        if discard or conn.is_closed():
            conn.terminate()
            await self._drop(conn)
        else:
            await self._put_back(conn)

    async def close(self) -> None:
        self.deadlines.close()
        every, self._every, self._idle = self._every, set(), []
        for conn in every:
            conn.terminate()
        self._open = 0


class PostgresTx(PlannedTx):
    __slots__ = ("_conn", "_deadlines", "failed")
    is_postgres = True

    def __init__(self, conn: asyncpg.Connection, dialect: Dialect, deadlines: Deadlines) -> None:
        self.after_commit = []  # (the bases' fields too: see `Tx`)
        self._dialect = dialect
        self._conn = conn
        self._deadlines = deadlines
        self.failed = False  # the connection broke: close it rather than reuse it

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        plan = self._plan(stmt)
        raw = await self._call(self._conn.fetch, plan.sql, plan.params(params))
        return plan.rows(raw, tuple(raw[0].keys()) if raw else ())

    async def one_values(self, stmt: Statement, params: Params = None) -> list[Any] | None:
        plan = self._plan(stmt)
        raw = await self._call(self._conn.fetchrow, plan.sql, plan.params(params))
        return None if raw is None else plan.values(raw)

    async def all_values(self, stmt: Statement, params: Params = None) -> list[list[Any]]:
        plan = self._plan(stmt)
        raw = await self._call(self._conn.fetch, plan.sql, plan.params(params))
        return [plan.values(row) for row in raw]

    async def run(self, stmt: Statement, params: Params = None) -> int:
        plan = self._plan(stmt)
        status = await self._call(self._conn.execute, plan.sql, plan.params(params))
        count = status.rsplit(" ", 1)[-1]
        return int(count) if count.isdigit() else 0

    async def many(self, stmt: Statement, rows: Sequence[Params]) -> None:
        if rows:
            plan = self._plan(stmt)
            await self._many(plan.sql, [plan.params(row) for row in rows])

    async def many_bound(self, stmt: Prepared, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            await self._many(stmt.plan(self._dialect).sql, rows)

    async def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(lambda sql, *_: self._conn.executemany(sql, rows), sql, rows[0])

    async def _call(self, send: Callable[..., Awaitable[T]], sql: str, values: Sequence[Any]) -> T:
        """`send(sql, *values)` within the statement time-out, with a driver error turned
        into the store's (and a broken connection marked, to be closed rather than reused)."""
        deadlines, conn = self._deadlines, self._conn
        deadlines.start(conn)
        try:
            return await send(sql, *values)
        except Exception as error:
            if broken(error):
                self.failed = True
            raise translate(error, sql, values) from error
        finally:
            deadlines.finish(conn)


class PostgresBlock:
    """`Database.read()` and `Database.write()` on PostgreSQL: one transaction on a pooled
    connection, committed when the block exits normally, rolled back otherwise."""

    __slots__ = ("_begun", "_conn", "_dialect", "_mark", "_pool", "_tx", "_write")

    def __init__(self, pool: PostgresPool, dialect: Dialect, *, write: bool) -> None:
        self._pool = pool
        self._dialect = dialect
        self._write = write
        self._tx: PostgresTx | None = None
        self._mark: ReadMark | None = None
        self._begun = True

    async def __aenter__(self) -> Tx:
        if self._write:
            refuse_write_inside_read()
        conn = await self._pool.acquire()
        self._begun = self._write or not self._pool.server_prepared
        try:
            if self._begun:
                await _command(self._pool.deadlines, conn, "BEGIN")
        except BaseException as error:  # cancelled too: the connection's state is unknown
            await self._pool.release(conn, discard=True)
            if isinstance(error, Exception):
                raise translate(error) from error
            raise
        self._tx = PostgresTx(conn, self._dialect, self._pool.deadlines)
        if not self._write:
            self._mark = ReadMark(self._pool.current_task())
        return self._tx

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        tx = self._tx
        assert tx is not None
        if self._mark is not None:
            self._mark.clear()
        conn, discard = tx._conn, tx.failed
        try:
            if self._begun and exc_type is None:
                await _command(self._pool.deadlines, conn, "COMMIT")
            elif (
                self._begun and not discard
            ):  # (a broken connection is closed instead: nothing to commit)
                await _command(self._pool.deadlines, conn, "ROLLBACK")
        except Exception as error:
            discard = True
            if exc_type is None:
                raise translate(error) from error
        except BaseException:  # cancelled mid-commit: the connection's state is unknown
            discard = True
            raise
        finally:
            await self._pool.release(conn, discard=discard)
        if exc_type is None:
            tx.run_after_commit()


async def _command(deadlines: Deadlines, conn: asyncpg.Connection, sql: str) -> None:
    deadlines.start(conn)
    try:
        await conn.execute(sql)
    finally:
        deadlines.finish(conn)
