"""Every statement the store prepares at import compiles for both backends."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.dialects.sqlite.aiosqlite import SQLiteDialect_aiosqlite

import api.store
from api.store.engine import Prepared


def _prepared() -> list[tuple[str, Prepared]]:
    found: list[tuple[str, Prepared]] = []
    for info in pkgutil.iter_modules(api.store.__path__):
        module = importlib.import_module(f"api.store.{info.name}")
        for name, value in vars(module).items():
            values: list[Any] = list(value.values()) if isinstance(value, dict) else [value]
            found += [(f"{info.name}.{name}", v) for v in values if isinstance(v, Prepared)]
    return found


PREPARED = _prepared()


def test_the_hot_statements_are_prepared() -> None:
    names = {name for name, _ in PREPARED}
    assert {"sessions._WITH_USER", "users._BY_PK", "audit._INSERT"} <= names


@pytest.mark.parametrize(
    "dialect",
    [SQLiteDialect_aiosqlite(), PGDialect_asyncpg()],  # type: ignore[no-untyped-call], ids=["sqlite", "postgresql"]
)
@pytest.mark.parametrize(("name", "stmt"), PREPARED, ids=[n for n, _ in PREPARED])
def test_prepared_statement_compiles(name: str, stmt: Prepared, dialect: Any) -> None:
    plan = stmt.plan(dialect)
    assert plan.sql
    assert all(0 <= i < len(plan.names) for i, _ in plan.binders)
