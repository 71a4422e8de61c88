"""SQLite: the standard `sqlite3` module, on the event loop itself.

A statement on an indexed table in WAL mode takes microseconds, far less than handing it to a
thread and waking the loop again when it is done. So nothing may wait inside SQLite:

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
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError

from api.core.errors import Unavailable
from api.store.blocks import BoundedPool, ReadMark, refuse_write_inside_read
from api.store.statements import Params, Plan, PlannedTx, Prepared, Row, Statement, Tx

SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_BUSY = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED


class SqliteTx(PlannedTx):
    __slots__ = ("_conn",)

    def __init__(self, conn: sqlite3.Connection, dialect: Dialect) -> None:
        self.after_commit = []  # (the bases' fields too: see `Tx`)
        self._dialect = dialect
        self._conn = conn

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        plan = self._plan(stmt)
        conn, sql, values = self._conn, plan.sql, plan.params(params)
        cursor = _try(conn, sql, values) or await _while_busy(conn, sql, values)
        return _fetch(plan, cursor)

    async def one(self, stmt: Statement, params: Params = None) -> Row | None:
        # `Tx.one` over `all`, without the second coroutine: the per-request auth lookup and
        # the versioned update both come through here.
        plan = self._plan(stmt)
        conn, sql, values = self._conn, plan.sql, plan.params(params)
        cursor = _try(conn, sql, values) or await _while_busy(conn, sql, values)
        rows = _fetch(plan, cursor)
        return rows[0] if rows else None

    async def one_values(self, stmt: Statement, params: Params = None) -> list[Any] | None:
        plan = self._plan(stmt)
        conn, sql, values = self._conn, plan.sql, plan.params(params)
        cursor = _try(conn, sql, values) or await _while_busy(conn, sql, values)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else plan.values(row)

    async def all_values(self, stmt: Statement, params: Params = None) -> list[list[Any]]:
        plan = self._plan(stmt)
        conn, sql, values = self._conn, plan.sql, plan.params(params)
        cursor = _try(conn, sql, values) or await _while_busy(conn, sql, values)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [plan.values(row) for row in rows]

    async def run(self, stmt: Statement, params: Params = None) -> int:
        plan = self._plan(stmt)
        conn, sql, values = self._conn, plan.sql, plan.params(params)
        cursor = _try(conn, sql, values) or await _while_busy(conn, sql, values)
        count = cursor.rowcount
        cursor.close()
        return count

    async def many(self, stmt: Statement, rows: Sequence[Params]) -> None:
        if not rows:
            return
        plan = self._plan(stmt)
        values = [plan.params(row) for row in rows]
        (await _execute(self._conn, plan.sql, values, many=True)).close()

    async def many_bound(self, stmt: Prepared, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            sql = stmt.plan(self._dialect).sql
            (await _execute(self._conn, sql, rows, many=True)).close()


def _fetch(plan: Plan, cursor: sqlite3.Cursor) -> list[Row]:
    """Every row of an executed statement, converted by its plan; the cursor is closed."""
    try:
        keys = plan.keys or [d[0] for d in cursor.description or ()]
        return plan.rows(cursor.fetchall(), keys)
    finally:
        cursor.close()


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", None) in _SQLITE_BUSY or "locked" in str(error)


def _try(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], many: bool = False
) -> sqlite3.Cursor | None:
    """Run one statement (once per parameter set if `many`); None when another connection
    holds the lock it needs."""
    try:
        return conn.executemany(sql, params) if many else conn.execute(sql, params)
    except sqlite3.OperationalError as error:
        if _is_busy(error):
            return None
        raise
    except sqlite3.IntegrityError as error:
        raise IntegrityError(sql, params, error) from None


async def _execute(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], *, many: bool = False
) -> sqlite3.Cursor:
    """Run one statement; while another process holds the lock, retry without blocking."""
    return _try(conn, sql, params, many) or await _while_busy(conn, sql, params, many)


async def _while_busy(
    conn: sqlite3.Connection, sql: str, params: Sequence[Any], many: bool = False
) -> sqlite3.Cursor:
    """`_execute` once the first try found the database locked: the statement is tried again
    after a growing pause, up to `SQLITE_BUSY_TIMEOUT_MS`. (The hot paths call `_try` first
    themselves: a statement that runs at once then costs no coroutine.)"""
    cursor: sqlite3.Cursor | None = None
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = 0.001
    while cursor is None:
        if time.monotonic() > deadline:
            raise Unavailable("the database stayed locked")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)
        cursor = _try(conn, sql, params, many)
    return cursor


class SqlitePool(BoundedPool[sqlite3.Connection]):
    """Connections to one SQLite file: one writer, and up to `limit` readers."""

    def __init__(self, path: str, *, limit: int, timeout: float) -> None:
        super().__init__(limit=limit, timeout=timeout)
        self.path = path
        self._writer: sqlite3.Connection | None = None
        self._write_lock: asyncio.Lock | None = None
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

    async def release(self, conn: sqlite3.Connection) -> None:
        if conn.in_transaction:
            conn.rollback()
        await self._put_back(conn)

    def write_lock(self) -> asyncio.Lock:
        if self._write_lock is None:
            self._write_lock = asyncio.Lock()
        return self._write_lock

    @property
    def open_writer(self) -> sqlite3.Connection | None:
        """The writer connection once `writer()` has opened it (no await on the hot path)."""
        return self._writer

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


class SqliteRead:
    """`Database.read()` on SQLite (a class rather than a generator: it runs several times
    per request, and an async generator costs a few microseconds to set up and tear down).

    While no write is under way the read runs on the writer connection, holding the write
    lock (taken without waiting) so that none starts meanwhile: SQLite drops a connection's
    page cache whenever another connection has written since its last read, which under a
    steady write load is every read on a reader, while the writer's own cache stays current
    (a session lookup: 24 -> 13 µs). During a write, reads go to a reader connection and see
    the last commit."""

    __slots__ = ("_conn", "_dialect", "_mark", "_on_writer", "_pool")

    def __init__(self, pool: SqlitePool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._conn: sqlite3.Connection | None = None
        self._on_writer = False
        self._mark: ReadMark | None = None

    async def __aenter__(self) -> Tx:
        pool = self._pool
        lock = pool.write_lock()
        if lock.locked() or pool.writers_waiting:
            # (A free lock with writers queued would make this read queue behind them.)
            self._conn = await pool.acquire()
            self._mark = ReadMark(pool.current_task())
            return SqliteTx(self._conn, self._dialect)
        await lock.acquire()  # free and nobody queued: returns at once
        try:
            self._conn = pool.open_writer or await pool.writer()
        except BaseException:
            lock.release()
            raise
        self._on_writer = True
        self._mark = ReadMark(pool.current_task())
        return SqliteTx(self._conn, self._dialect)

    async def __aexit__(self, *_exc: object) -> None:
        conn, pool = self._conn, self._pool
        assert conn is not None and self._mark is not None
        self._mark.clear()
        if not self._on_writer:
            await pool.release(conn)
            return
        try:
            if conn.in_transaction:
                conn.rollback()
        finally:
            pool.write_lock().release()


class SqliteWrite:
    """`Database.write()` on SQLite: `BEGIN IMMEDIATE` on the writer connection under the
    write lock; COMMIT when the block exits normally, ROLLBACK otherwise."""

    __slots__ = ("_dialect", "_pool", "_tx", "_writer")

    def __init__(self, pool: SqlitePool, dialect: Dialect) -> None:
        self._pool = pool
        self._dialect = dialect
        self._tx: SqliteTx | None = None
        self._writer: sqlite3.Connection | None = None

    async def __aenter__(self) -> Tx:
        refuse_write_inside_read()
        pool = self._pool
        lock = pool.write_lock()
        pool.writers_waiting += 1
        try:
            await lock.acquire()
        finally:
            pool.writers_waiting -= 1
        try:
            writer = pool.open_writer or await pool.writer()
            if _try(writer, "BEGIN IMMEDIATE", ()) is None:
                await _while_busy(writer, "BEGIN IMMEDIATE", ())
        except BaseException:
            lock.release()
            raise
        self._writer = writer
        self._tx = SqliteTx(writer, self._dialect)
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
