"""Connections, transactions and the statement executor every store function goes through.

Statements are written in SQLAlchemy Core. Module-level ones are wrapped in `prepare()` and
compiled once per dialect into SQL text, a parameter order and the type conversions of their
columns; ad-hoc ones are compiled when run.

SQLite runs on the event loop itself, through the standard `sqlite3` module: a statement on an
indexed table in WAL mode takes microseconds, far less than handing it to a thread and waking
the loop again when it is done. So nothing may wait inside SQLite:

- writes are serialised in process by an asyncio lock, on one writer connection that starts
  each transaction with `BEGIN IMMEDIATE`, so a transaction holding the lock also holds the
  database's write lock from its first statement;
- reads run on that writer connection too while no write holds or awaits the lock (its page
  cache stays current, where a reader's is dropped after every other connection's commit),
  and on a pool of reader connections otherwise;
- the busy timeout is zero: when another process (`--workers N`) holds the write lock, the
  statement is retried after an `asyncio.sleep` backoff, up to `SQLITE_BUSY_TIMEOUT_MS`, and
  then answered 503;
- WAL checkpoints stay SQLite's automatic ones, in the commit that crosses 1,000 pages. A
  checkpointer thread on its own connection was tried: readers then contend with it for the
  WAL index, and SQLite resolves that by sleeping inside the read, on the loop's thread.

PostgreSQL runs through SQLAlchemy's asyncpg dialect on a pooled `AsyncConnection`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Hashable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import orjson
from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from api.core.errors import TransientConflict, Unavailable

SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED

Row = dict[str, Any]
Params = Mapping[str, Any] | None


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class Prepared:
    """A statement built once (at import) and compiled once per dialect.

    Its parameters are named `bindparam`s; an `IN` list would need its values at compile
    time, so prepared statements spell one out with `OR` instead."""

    __slots__ = ("_plans", "stmt")

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._plans: dict[str, _Plan] = {}

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = _Plan(self.stmt, dialect)
        return plan


def prepare(stmt: Executable) -> Prepared:
    return Prepared(stmt)


Statement = Prepared | Executable

_BY_SHAPE: dict[Hashable, Prepared] = {}


def prepare_once(shape: Hashable, build: Callable[[], Executable]) -> Prepared:
    """The statement for one shape (e.g. a table and a set of columns), built on first use.
    Shapes come from code, not clients, so there are few; the cap is only a backstop."""
    stmt = _BY_SHAPE.get(shape)
    if stmt is None:
        stmt = prepare(build())
        if len(_BY_SHAPE) < 1024:
            _BY_SHAPE[shape] = stmt
    return stmt


def value_binds(table: Table, columns: Sequence[str]) -> dict[Any, Any]:
    """`column: bindparam("v_<column>")` for each column: values passed as `v_<name>`."""
    return {table.c[n]: bindparam(f"v_{n}", type_=table.c[n].type) for n in columns}


def insert_values(
    table: Table, values: Mapping[str, Any], returning: tuple[str, ...] = ()
) -> tuple[Prepared, dict[str, Any]]:
    """A prepared INSERT of these columns (built once per table and column set) and its
    parameters."""

    def build() -> Executable:
        built = insert(table).values(value_binds(table, tuple(values)))
        return built.returning(*(table.c[n] for n in returning)) if returning else built

    stmt = prepare_once(("insert", table.name, tuple(values), returning), build)
    return stmt, {f"v_{n}": v for n, v in values.items()}


class _Plan:
    """SQL text, positional parameter names and type conversions of one compiled statement."""

    __slots__ = ("binders", "defaults", "keys", "names", "result", "sql")

    def __init__(self, stmt: Executable, dialect: Dialect) -> None:
        assert isinstance(stmt, ClauseElement)
        compiled: Any = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        # Column defaults SQLAlchemy would fill in at execution (all of ours are constants).
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.onupdate if column in compiled.update_prefetch else column.default
            if default is None or not default.is_scalar:
                raise NotImplementedError(f"non-constant default on {column}")
            self.defaults[column.key] = default.arg
        processors = compiled._bind_processors
        self.binders: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, proc) for i, name in enumerate(self.names) if (proc := processors.get(name))
        )
        columns = compiled._result_columns or []
        self.keys: tuple[str, ...] | None = tuple(c.keyname for c in columns) if columns else None
        self.result: tuple[tuple[int, Callable[[Any], Any]], ...] = tuple(
            (i, proc)
            for i, c in enumerate(columns)
            if (proc := c.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
        )

    def params(self, given: Params) -> tuple[Any, ...]:
        defaults = self.defaults
        if given:
            values = [given[n] if n in given else defaults[n] for n in self.names]
        else:
            values = [defaults[n] for n in self.names]
        for i, proc in self.binders:
            values[i] = proc(values[i])
        return tuple(values)

    def rows(self, raw: Sequence[Sequence[Any]], description: Any) -> list[Row]:
        keys = self.keys or tuple(d[0] for d in description or ())
        if not self.result:
            return [dict(zip(keys, r, strict=True)) for r in raw]
        out = []
        for r in raw:
            values = list(r)
            for i, proc in self.result:
                values[i] = proc(values[i])
            out.append(dict(zip(keys, values, strict=True)))
        return out


class Tx:
    """A connection inside one transaction; store functions take it as their first argument.

    `one`, `all`, `scalar` and `run` are the whole interface: rows come back as dicts keyed
    by column label.
    """

    is_postgres = False

    def __init__(self) -> None:
        # Run once the transaction has committed (never after a rollback).
        self.after_commit: list[Callable[[], None]] = []

    def run_after_commit(self) -> None:
        for callback in self.after_commit:
            callback()

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        raise NotImplementedError

    async def run(self, stmt: Statement, params: Params = None) -> int:
        """Execute a statement that returns no rows; the number of rows it changed."""
        raise NotImplementedError

    async def one(self, stmt: Statement, params: Params = None) -> Row | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def scalar(self, stmt: Statement, params: Params = None) -> Any:
        row = await self.one(stmt, params)
        return None if row is None else next(iter(row.values()))


class _SqliteTx(Tx):
    __slots__ = ("_conn", "_dialect")

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect) -> None:
        super().__init__()
        self._conn = conn
        self._dialect = dialect

    def _plan(self, stmt: Statement) -> _Plan:
        if isinstance(stmt, Prepared):
            return stmt.plan(self._dialect)
        return _Plan(stmt, self._dialect)

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        plan = self._plan(stmt)
        cursor = await _execute(self._conn, plan.sql, plan.params(params))
        try:
            return plan.rows(cursor.fetchall(), cursor.description)
        finally:
            cursor.close()

    async def run(self, stmt: Statement, params: Params = None) -> int:
        plan = self._plan(stmt)
        cursor = await _execute(self._conn, plan.sql, plan.params(params))
        count = cursor.rowcount
        cursor.close()
        return count


class _AsyncTx(Tx):
    """PostgreSQL (asyncpg) through SQLAlchemy's async connection."""

    __slots__ = ("conn",)
    is_postgres = True

    def __init__(self, conn: AsyncConnection) -> None:
        super().__init__()
        self.conn = conn

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        sa_stmt = stmt.stmt if isinstance(stmt, Prepared) else stmt
        result = await self.conn.execute(sa_stmt, dict(params) if params else None)
        return [dict(r) for r in result.mappings()]

    async def run(self, stmt: Statement, params: Params = None) -> int:
        sa_stmt = stmt.stmt if isinstance(stmt, Prepared) else stmt
        result = await self.conn.execute(sa_stmt, dict(params) if params else None)
        return int(result.rowcount)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in _SQLITE_BUSY or "locked" in str(error)


def _try(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> sqlite3.Cursor | None:
    """Run one statement; None when another connection holds the lock it needs."""
    try:
        return conn.execute(sql, params)
    except sqlite3.OperationalError as error:
        if _is_busy(error):
            return None
        raise
    except sqlite3.IntegrityError as error:
        raise IntegrityError(sql, params, error) from None


async def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
    """Run one statement; while another process holds the lock, retry without blocking."""
    cursor = _try(conn, sql, params)
    if cursor is not None:
        return cursor
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while cursor is None:
        if time.monotonic() > deadline:
            raise Unavailable("the database stayed locked")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        cursor = _try(conn, sql, params)
    return cursor


class _SqlitePool:
    """Connections to one SQLite file: one writer, and up to `limit` readers."""

    def __init__(self, path: str, *, limit: int, timeout: float) -> None:
        self.path = path
        self.limit = limit
        self.timeout = timeout
        self._idle: list[sqlite3.Connection] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None
        self._writer: sqlite3.Connection | None = None
        self._write_lock: asyncio.Lock | None = None
        # The task reading on the writer connection (under the write lock), if any.
        self.reading: asyncio.Task[Any] | None = None
        self.writers_waiting = 0

    async def _connect(self) -> sqlite3.Connection:
        # timeout=0: opening must not wait inside SQLite either (the default is 5 s).
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
        try:
            mode = (await _execute(conn, "PRAGMA journal_mode", ())).fetchone()
            if mode is None or str(mode[0]).lower() != "wal":
                # Switching needs the database to itself; migrations have usually done it.
                (await _execute(conn, "PRAGMA journal_mode=WAL", ())).close()
            for pragma in ("PRAGMA foreign_keys=ON", "PRAGMA synchronous=NORMAL"):
                conn.execute(pragma).close()
        except BaseException:
            conn.close()
            raise
        return conn

    async def acquire(self) -> sqlite3.Connection:
        if self._idle:
            return self._idle.pop()
        if self._open < self.limit:
            self._open += 1
            try:
                return await self._connect()
            except BaseException:
                self._open -= 1
                raise
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            try:
                await asyncio.wait_for(self._freed.wait_for(lambda: bool(self._idle)), self.timeout)
            except TimeoutError:
                raise Unavailable("no database connection is free") from None
            return self._idle.pop()

    async def release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        self._idle.append(conn)
        if self._freed is not None:
            async with self._freed:
                self._freed.notify()

    def write_lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    async def writer(self) -> sqlite3.Connection:
        """The one writer connection; call with `write_lock()` held."""
        if self._writer is None:
            self._writer = await self._connect()
        return self._writer

    async def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self._open = 0
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class _SqliteRead:
    """`Database.read()` on SQLite (a class rather than a generator: it runs several times
    per request, and an async generator costs a few microseconds to set up and tear down).

    While no write is under way the read runs on the writer connection, holding the write
    lock (taken without waiting) so that none starts meanwhile: SQLite drops a connection's
    page cache whenever another connection has written since its last read, which under a
    steady write load is every read on a reader, while the writer's own cache stays current
    (a session lookup: 24 -> 13 µs). During a write, reads go to a reader connection and see
    the last commit."""

    __slots__ = ("_conn", "_dialect", "_on_writer", "_pool")

    def __init__(self, pool: _SqlitePool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None
        self._on_writer = False

    async def __aenter__(self) -> Tx:
        pool = self._pool
        lock = pool.write_lock()
        if lock.locked() or pool.writers_waiting:
            # (A free lock with writers queued would make this read queue behind them.)
            self._conn = await pool.acquire()
            return _SqliteTx(self._conn, self._dialect)
        await lock.acquire()  # free and nobody queued: returns at once
        try:
            self._conn = await pool.writer()
        except BaseException:
            lock.release()
            raise
        self._on_writer = True
        pool.reading = asyncio.current_task()
        return _SqliteTx(self._conn, self._dialect)

    async def __aexit__(self, *_exc: object) -> None:
        conn, pool = self._conn, self._pool
        assert conn is not None
        if not self._on_writer:
            await pool.release(conn)
            return
        pool.reading = None
        try:
            if conn.in_transaction:
                conn.rollback()
        finally:
            pool.write_lock().release()


class _SqliteWrite:
    """`Database.write()` on SQLite: `BEGIN IMMEDIATE` on the writer connection under the
    write lock; COMMIT when the block exits normally, ROLLBACK otherwise."""

    __slots__ = ("_dialect", "_pool", "_tx", "_writer")

    def __init__(self, pool: _SqlitePool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._tx: _SqliteTx | None = None
        self._writer: sqlite3.Connection | None = None

    async def __aenter__(self) -> Tx:
        pool = self._pool
        if pool.reading is not None and pool.reading is asyncio.current_task():
            # It would wait for the lock its own read holds.
            raise RuntimeError("write() inside read(): finish the read first")
        lock = pool.write_lock()
        pool.writers_waiting += 1
        try:
            await lock.acquire()
        finally:
            pool.writers_waiting -= 1
        try:
            writer = await pool.writer()
            await _execute(writer, "BEGIN IMMEDIATE", ())
        except BaseException:
            lock.release()
            raise
        self._writer = writer
        self._tx = _SqliteTx(writer, self._dialect)
        return self._tx

    async def __aexit__(self, exc_type: type[BaseException] | None, *_exc: object) -> None:
        tx, writer = self._tx, self._writer
        assert tx is not None and writer is not None
        try:
            if exc_type is not None:
                if writer.in_transaction:
                    writer.rollback()
                return
            try:
                writer.execute("COMMIT").close()
            except BaseException:
                if writer.in_transaction:
                    writer.rollback()
                raise
        finally:
            self._pool.write_lock().release()
        tx.run_after_commit()


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
        # Migrations (and PostgreSQL requests) go through SQLAlchemy's engine.
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.dialect = self.engine.dialect
        self._sqlite: _SqlitePool | None = None
        if self.is_sqlite:
            path = make_url(url).database or ":memory:"
            self._sqlite = _SqlitePool(path, limit=pool_size + max_overflow, timeout=pool_timeout)

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

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A few statements that write nothing.

        On SQLite each statement runs on its own (autocommit) and sees the latest commit: no
        read needs a snapshot across statements, and BEGIN and ROLLBACK would double the
        statements of a one-query read. What must agree with a write is read in `write()`.
        A read block may hold SQLite's writer connection (see `_SqliteRead`): it runs its
        statements and nothing else that waits (no hashing, no network)."""
        if self._sqlite is None:
            return self._postgres_read()
        return _SqliteRead(self._sqlite, self.dialect)

    def write(self) -> AbstractAsyncContextManager[Tx]:
        """One write transaction: committed when the block exits normally, else rolled back."""
        if self._sqlite is None:
            return self._postgres_write()
        return _SqliteWrite(self._sqlite, self.dialect)

    @asynccontextmanager
    async def _postgres_read(self) -> AsyncIterator[Tx]:
        async with self._connection() as conn:
            yield _AsyncTx(conn)

    @asynccontextmanager
    async def _postgres_write(self) -> AsyncIterator[Tx]:
        try:
            async with self._connection() as conn:
                async with conn.begin():
                    tx: Tx = _AsyncTx(conn)
                    yield tx
                tx.run_after_commit()
        except DBAPIError as error:
            if retryable(error):
                raise TransientConflict(str(error.orig)) from error
            raise

    async def dispose(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
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
