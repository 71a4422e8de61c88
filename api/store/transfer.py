"""Bulk statements for `amend users import` / `export`: many rows per statement.

One multi-row statement per batch keeps a write transaction short (the SQLite write lock is
held for milliseconds, so a server on the same file keeps answering) and costs far less per
row than one statement each. Statements are built once per batch size and dialect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.base import Executable

from api.core.models import Actor, User
from api.store.engine import Prepared, Tx, prepare, prepare_once
from api.store.errors import taken
from api.store.tables import audit_events, users
from api.store.users import USER_COLUMNS, to_user

# Columns an import writes (the rest keep their defaults).
IMPORT_COLUMNS = (
    "endpoint_id",
    "unique_id",
    "username",
    "username_canonical",
    "email",
    "email_canonical",
    "password_hash",
    "first_name",
    "last_name",
    "phone_number",
    "image_url",
    "email_verified",
    "data",
    "version",
    "created_at",
    "updated_at",
)
_AUDIT_COLUMNS = ("project_id", "user_pk", "action", "fields", "strategy", "actor", "ip", "at")


def _multi_insert(table: Any, columns: Sequence[str], n: int, returning: Any = None) -> Prepared:
    def build() -> Executable:
        rows = [
            {table.c[c]: bindparam(f"{c}_{i}", type_=table.c[c].type) for c in columns}
            for i in range(n)
        ]
        stmt = insert(table).values(rows)
        return stmt.returning(*returning) if returning is not None else stmt

    return prepare_once(("bulk insert", table.name, tuple(columns), n), build)


def _numbered(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> dict[str, Any]:
    return {f"{c}_{i}": row[c] for i, row in enumerate(rows) for c in columns}


async def insert_users(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Insert users (values keyed by `IMPORT_COLUMNS`); their pks by unique_id. A unique
    constraint violation raises USERNAME_TAKEN / EMAIL_TAKEN (the whole batch is refused)."""
    if not rows:
        return {}
    stmt = _multi_insert(users, IMPORT_COLUMNS, len(rows), (users.c.pk, users.c.unique_id))
    try:
        found = await tx.all(stmt, _numbered(rows, IMPORT_COLUMNS))
    except IntegrityError as error:
        raise taken(error) from None
    return {r["unique_id"]: r["pk"] for r in found}


async def record_imports(
    tx: Tx, *, project_id: str, events: Sequence[tuple[int, Sequence[str]]], now: int
) -> None:
    """One audit event `import` (actor master) per (user pk, field names)."""
    if not events:
        return
    rows = [
        {
            "project_id": project_id,
            "user_pk": pk,
            "action": "import",
            "fields": sorted(fields),
            "strategy": None,
            "actor": Actor.MASTER.value,
            "ip": None,
            "at": now,
        }
        for pk, fields in events
    ]
    await tx.run(
        _multi_insert(audit_events, _AUDIT_COLUMNS, len(rows)), _numbered(rows, _AUDIT_COLUMNS)
    )


def warm(dialect: Any, sizes: Sequence[int]) -> None:
    """Compile the batch statements for these batch sizes now, outside any transaction:
    a 500-row statement takes a few hundred milliseconds to compile, which must not be spent
    holding the write lock."""
    for n in sizes:
        if n > 0:
            _multi_insert(users, IMPORT_COLUMNS, n, (users.c.pk, users.c.unique_id)).plan(dialect)
            _multi_insert(audit_events, _AUDIT_COLUMNS, n).plan(dialect)
            _lookup(n).plan(dialect)


def _lookup(n: int) -> Prepared:
    def build() -> Executable:
        return (
            select(*USER_COLUMNS)
            .where(
                # Three branches, each on a whole unique index: SQLite's OR optimisation
                # then probes (endpoint_id, key) for every key, where `endpoint_id = ? AND
                # (a OR b)` made it scan the endpoint's users once per batch.
                or_(
                    users.c.unique_id.in_([bindparam(f"i{k}") for k in range(n)]),
                    (users.c.endpoint_id == bindparam("endpoint_id"))
                    & users.c.username_canonical.in_([bindparam(f"u{k}") for k in range(n)]),
                    (users.c.endpoint_id == bindparam("endpoint_id"))
                    & users.c.email_canonical.in_([bindparam(f"e{k}") for k in range(n)]),
                )
            )
            .order_by(users.c.pk)
        )

    return prepare_once(("import lookup", n), build)


async def existing(
    tx: Tx,
    endpoint_id: int,
    endpoint_name: str,
    keys: Sequence[tuple[str, str, str | None]],
) -> list[User]:
    """Users that share a unique_id (in any endpoint: ids are global), or a canonical
    username or email within this endpoint, with any of `keys` (unique_id, username key,
    email key). Users of other endpoints come back with `endpoint` set to ""."""
    if not keys:
        return []
    params: dict[str, Any] = {"endpoint_id": endpoint_id}
    for k, (uid, username_key, email_key) in enumerate(keys):
        params.update({f"i{k}": uid, f"u{k}": username_key, f"e{k}": email_key})
    rows = await tx.all(_lookup(len(keys)), params)
    return [to_user(r, endpoint_name if r["endpoint_id"] == endpoint_id else "") for r in rows]


EXPORT_COLUMNS = (
    users.c.pk,
    users.c.unique_id,
    users.c.username,
    users.c.email,
    users.c.email_verified,
    users.c.first_name,
    users.c.last_name,
    users.c.phone_number,
    users.c.image_url,
    users.c.data,
    users.c.created_at,
    users.c.password_hash,
)
_EXPORT = prepare(
    select(*EXPORT_COLUMNS)
    .where(users.c.endpoint_id == bindparam("endpoint_id"), users.c.pk > bindparam("after"))
    .order_by(users.c.pk)
    .limit(bindparam("limit"))
)


async def export_page(tx: Tx, endpoint_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
    """The next `limit` users of an endpoint after primary key `after`, oldest first, as rows
    of `EXPORT_COLUMNS` (no `User` objects: an export reads every row once, quickly)."""
    return await tx.all(_EXPORT, {"endpoint_id": endpoint_id, "after": after, "limit": limit})
