"""An imported user's insert, bound ahead of the write, is what the statement's plan binds."""

from __future__ import annotations

import pytest

from api.store import transfer
from api.store.engine import Database

VALUES = (
    7,
    "0123456789abcdef0123456789abcdef",
    "Ann",
    "ann",
    "Ann@example.com",
    "ann@example.com",
    "$1$abc$",
    "Ann",
    None,
    "+14155552671",
    None,
    True,
    {"plan": "pro", "n": [1, 2.5]},
    1,
    1620277689123,
    1700000000000,
)


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite:////tmp/never-opened.db", "postgresql+asyncpg://u@localhost/db"]
)
async def test_bound_values_are_what_the_plan_binds(url: str) -> None:
    db = Database(url)  # no connection is opened
    dialect = db.dialect
    bind, created, updated = transfer.user_binder(dialect)
    plan = transfer._INSERT_USER.plan(dialect)
    named = {f"v_{c}": v for c, v in zip(transfer.IMPORT_COLUMNS, VALUES, strict=True)}
    assert bind(VALUES) == list(plan.params(named))
    assert (bind(VALUES)[created], bind(VALUES)[updated]) == (1620277689123, 1700000000000)
    await db.dispose()
