"""Bulk statements for `amend users import` / `export`: many rows per statement.

One `executemany` per batch keeps a write transaction short (the SQLite write lock is held
for milliseconds, so a server on the same file keeps answering) and costs far less per row
than one statement each. Statements are compiled once per dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, insert, literal_column, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.base import Executable

from api.core.models import Actor, User
from api.store.engine import Prepared, Tx, prepare, prepare_once, value_binds
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
_INSERT_USER = prepare(insert(users).values(value_binds(users, IMPORT_COLUMNS)))
_BINDS = tuple((f"v_{c}", c) for c in IMPORT_COLUMNS)
# The audit event of an imported user, found by its unique_id (the insert returns no pks:
# `executemany` cannot, and one probe of the unique index per row costs less than a round trip).
_RECORD_IMPORT = prepare(
    insert(audit_events).values(
        project_id=bindparam("project_id"),
        user_pk=select(users.c.pk)
        .where(users.c.unique_id == bindparam("unique_id"))
        .scalar_subquery(),
        action="import",
        fields=bindparam("fields", type_=audit_events.c.fields.type),
        strategy=None,
        actor=Actor.MASTER.value,
        ip=None,
        at=bindparam("at"),
    )
)


Binder = Callable[[Sequence[Any]], list[Any]]


def _binder(stmt: Prepared, dialect: Any, names: Sequence[str]) -> Binder:
    """Bind values given in the order of `names` (the statement's own parameter names) as
    `Plan.params` would: put in the plan's order, defaults added, types converted."""
    plan = stmt.plan(dialect)
    given = {n: i for i, n in enumerate(names)}
    others = [n for n in plan.names if n not in given]  # left to their defaults
    extras = tuple(plan.defaults[n] for n in others)
    at = {**given, **{n: len(names) + k for k, n in enumerate(others)}}
    order = itemgetter(*(at[n] for n in plan.names))
    binders = plan.binders

    def bind(values: Sequence[Any]) -> list[Any]:
        bound = list(order((*values, *extras)))
        for i, process in binders:
            bound[i] = process(bound[i])
        return bound

    return bind


def user_binder(dialect: Any) -> tuple[Binder, int, int]:
    """How to bind an imported user's values (in `IMPORT_COLUMNS` order) for
    `insert_bound_users` on this engine, and where `created_at` and `updated_at` land in the
    bound list (to be stamped when the row is written)."""
    names = [f"v_{c}" for c in IMPORT_COLUMNS]
    plan = _INSERT_USER.plan(dialect)
    bind = _binder(_INSERT_USER, dialect, names)
    return bind, plan.names.index("v_created_at"), plan.names.index("v_updated_at")


async def insert_bound_users(tx: Tx, rows: Sequence[Sequence[Any]]) -> bool:
    """Insert users bound by `user_binder`, one `executemany`; False if one of them breaks a
    unique constraint (some may be in: the caller must roll back)."""
    try:
        await tx.many_bound(_INSERT_USER, rows)
    except IntegrityError:
        return False
    return True


async def insert_users(tx: Tx, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert users (values keyed by `IMPORT_COLUMNS`), one `executemany`. A unique
    constraint violation raises USERNAME_TAKEN / EMAIL_TAKEN (the whole batch is refused)."""
    try:
        await tx.many(_INSERT_USER, [{b: row[c] for b, c in _BINDS} for row in rows])
    except IntegrityError as error:
        raise taken(error) from None


async def record_imports(
    tx: Tx,
    dialect: Any,
    *,
    project_id: str,
    events: Sequence[tuple[str, Sequence[str]]],
    now: int,
) -> None:
    """One audit event `import` (actor master) per (unique_id of a user, field names); the
    events are bound here for `dialect` (the transaction's)."""
    bind = _binder(_RECORD_IMPORT, dialect, ("project_id", "unique_id", "fields", "at"))
    await tx.many_bound(
        _RECORD_IMPORT, [bind((project_id, uid, fields, now)) for uid, fields in events]
    )


LOOKUP_KEYS = 500  # lines per conflict look-up: one statement shape, padded with NULLs


def warm(dialect: Any) -> None:
    """Compile the look-up now, outside any transaction: a statement of 1,500 parameters
    takes a while to compile, which must not be spent holding the write lock."""
    _lookup(LOOKUP_KEYS).plan(dialect)


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
    found: list[User] = []
    for start in range(0, len(keys), LOOKUP_KEYS):
        params: dict[str, Any] = {"endpoint_id": endpoint_id}
        chunk = keys[start : start + LOOKUP_KEYS]
        for k in range(LOOKUP_KEYS):
            uid, username_key, email_key = chunk[k] if k < len(chunk) else (None, None, None)
            params[f"i{k}"], params[f"u{k}"], params[f"e{k}"] = uid, username_key, email_key
        rows = await tx.all(_lookup(LOOKUP_KEYS), params)
        found.extend(
            to_user(r, endpoint_name if r["endpoint_id"] == endpoint_id else "") for r in rows
        )
    return found


_ANY_USER = prepare(
    select(users.c.pk).where(users.c.endpoint_id == bindparam("endpoint_id")).limit(1)
)


async def has_users(tx: Tx, endpoint_id: int) -> bool:
    return await tx.one(_ANY_USER, {"endpoint_id": endpoint_id}) is not None


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
    .where(
        # `endpoint_id + 0`: not a column an index can serve, so the page is read along the
        # primary key from `after` (where `endpoint_id = ?` made SQLite read the endpoint's
        # users through the username index and sort them all, for every page).
        users.c.endpoint_id + literal_column("0") == bindparam("endpoint_id"),
        users.c.pk > bindparam("after"),
    )
    .order_by(users.c.pk)
    .limit(bindparam("limit"))
)


async def export_page(tx: Tx, endpoint_id: int, *, after: int, limit: int) -> list[dict[str, Any]]:
    """The next `limit` users of an endpoint after primary key `after`, oldest first, as rows
    of `EXPORT_COLUMNS` (no `User` objects: an export reads every row once, quickly)."""
    return await tx.all(_EXPORT, {"endpoint_id": endpoint_id, "after": after, "limit": limit})
