"""Precompiled statements and the transaction interface every store function uses.

Statements are written in SQLAlchemy Core. Module-level ones are wrapped in `prepare()` and
compiled once per dialect into SQL text, a parameter order and the type conversions of their
columns; ad-hoc ones are compiled when run. Both engines (`api.store.sqlite`,
`api.store.postgres`) execute these plans on their driver directly.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, bindparam, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

Row = dict[str, Any]
Params = Mapping[str, Any] | None


class Prepared:
    """A statement built once (at import) and compiled once per dialect.

    Its parameters are named `bindparam`s; an `IN` list would need its values at compile
    time, so prepared statements spell one out with `OR` instead (compiling one raises)."""

    __slots__ = ("_plans", "stmt")

    def __init__(self, stmt: Executable) -> None:
        self.stmt = stmt
        self._plans: dict[str, Plan] = {}

    def plan(self, dialect: Dialect) -> Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = Plan(self.stmt, dialect, prepared=True)
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


class Plan:
    """SQL text, positional parameter names and type conversions of one compiled statement."""

    __slots__ = ("_pick", "binders", "defaults", "keys", "names", "result", "sql")

    def __init__(self, stmt: Executable, dialect: Dialect, *, prepared: bool = False) -> None:
        assert isinstance(stmt, ClauseElement)
        compiled: Any = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        if prepared and any(b.expanding for b in compiled.binds.values()):
            raise NotImplementedError(f"an IN list in a prepared statement: {compiled}")
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self._pick = _picker(self.names)
        self.defaults: dict[str, Any] = dict(compiled.construct_params(_check=False))
        # Column defaults SQLAlchemy would fill in at execution: only constants are possible.
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
        """The positional parameters: each name's given value, else its default."""
        values = self._pick({**self.defaults, **given} if given else self.defaults)
        if not self.binders:
            return values
        converted = list(values)
        for i, proc in self.binders:
            converted[i] = proc(converted[i])
        return tuple(converted)

    def rows(self, raw: Sequence[Sequence[Any]], keys: Sequence[str]) -> list[Row]:
        keys = self.keys or keys
        if not self.result:
            return [dict(zip(keys, r, strict=True)) for r in raw]
        return [dict(zip(keys, self.values(r), strict=True)) for r in raw]

    def values(self, raw: Sequence[Any]) -> list[Any]:
        """One row's values as the driver returned them, converted as `rows` converts them."""
        values = list(raw)
        for i, proc in self.result:
            values[i] = proc(values[i])
        return values


def _picker(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `names` from a mapping, as a tuple in that order (one C call)."""
    if not names:
        return lambda _values: ()
    if len(names) == 1:
        name = names[0]
        return lambda values: (values[name],)
    pick: Callable[[Mapping[str, Any]], tuple[Any, ...]] = itemgetter(*names)
    return pick


class Tx:
    """A connection inside one transaction; store functions take it as their first argument.

    `one`, `all`, `scalar` and `run` are the interface most store functions use: rows come
    back as dicts keyed by column label. `one_values` and `all_values` give rows as their
    values in column order, for rows read on every request; `many` and `many_bound` write
    in bulk.
    """

    __slots__ = ("after_commit",)
    is_postgres = False
    # Run once the transaction has committed (never after a rollback). Each engine's
    # transaction sets its fields itself: one is built for every read and write block, and
    # a chain of `__init__` calls through the bases cost 2 µs of a REST `PATCH /me`.
    after_commit: list[Callable[[], None]]

    def run_after_commit(self) -> None:
        for callback in self.after_commit:
            callback()

    async def all(self, stmt: Statement, params: Params = None) -> list[Row]:
        raise NotImplementedError

    async def run(self, stmt: Statement, params: Params = None) -> int:
        """Execute a statement that returns no rows; the number of rows it changed."""
        raise NotImplementedError

    async def many(self, stmt: Statement, rows: Sequence[Params]) -> None:
        """Execute a statement that returns no rows once per parameter set, in one driver
        call (`executemany`): for bulk writes, where a statement each would cost far more."""
        raise NotImplementedError

    async def many_bound(self, stmt: Prepared, rows: Sequence[Sequence[Any]]) -> None:
        """`many` with each parameter set already bound: in the order of the statement's plan
        for this engine, through its type conversions (`Plan.params`), e.g. by a process
        that prepared them ahead."""
        raise NotImplementedError

    async def one(self, stmt: Statement, params: Params = None) -> Row | None:
        rows = await self.all(stmt, params)
        return rows[0] if rows else None

    async def one_values(self, stmt: Statement, params: Params = None) -> list[Any] | None:
        """`one`'s row as its values, in the order of the statement's columns: for the
        per-request look-up, whose row would be a dict built only to be read back."""
        row = await self.one(stmt, params)
        return None if row is None else list(row.values())

    async def all_values(self, stmt: Statement, params: Params = None) -> list[list[Any]]:
        """`all`'s rows as their values (as `one_values` reads one row)."""
        return [list(row.values()) for row in await self.all(stmt, params)]

    async def scalar(self, stmt: Statement, params: Params = None) -> Any:
        row = await self.one(stmt, params)
        return None if row is None else next(iter(row.values()))


class PlannedTx(Tx):
    """A transaction of one engine: statements are planned for that engine's dialect."""

    __slots__ = ("_dialect",)
    _dialect: Dialect

    def _plan(self, stmt: Statement) -> Plan:
        if isinstance(stmt, Prepared):
            return stmt.plan(self._dialect)
        return Plan(stmt, self._dialect)
