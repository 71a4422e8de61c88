"""Users: lookups, insert, and the versioned single-statement update."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.base import Executable

from api.core import ids
from api.core.clock import now_ms
from api.core.models import User
from api.store.engine import Prepared, Tx, insert_values, prepare, prepare_once, value_binds
from api.store.errors import taken
from api.store.rows import from_row, reader
from api.store.tables import endpoints, users

USER_COLUMNS = (
    users.c.pk,
    users.c.unique_id,
    users.c.endpoint_id,
    users.c.username,
    users.c.email,
    users.c.first_name,
    users.c.last_name,
    users.c.phone_number,
    users.c.image_url,
    users.c.two_factor_enabled,
    users.c.email_verified,
    users.c.phone_verified,
    users.c.data,
    users.c.version,
    users.c.created_at,
    users.c.updated_at,
    users.c.password_hash,
)


def to_user(row: Mapping[str, Any], endpoint_name: str) -> User:
    """The user in a row read as a dict."""
    return from_row(User, row, endpoint=endpoint_name, data=_data(row["data"]))


def user_reader(columns: tuple[str, ...]) -> Callable[[Sequence[Any], str], User]:
    """`to_user` for rows read as their values, in the order of `columns`: worked out once
    for a statement whose rows are read on every request."""
    build = reader(User, columns=columns, given=("endpoint", "data"))
    data_at = columns.index("data")

    def read(values: Sequence[Any], endpoint_name: str) -> User:
        return build(values, {"endpoint": endpoint_name, "data": _data(values[data_at])})

    return read


def _data(stored: Any) -> dict[str, Any]:
    # NULL (no custom fields) reads as {}; the model gets a dict of its own.
    return dict(stored or {})


def _select() -> Select[Any]:
    return select(*USER_COLUMNS, endpoints.c.name.label("endpoint_name")).join(
        endpoints, endpoints.c.id == users.c.endpoint_id
    )


async def _one(
    tx: Tx, stmt: Select[Any] | Prepared, params: Mapping[str, Any] | None = None
) -> User | None:
    row = await tx.one(stmt, params)
    return None if row is None else to_user(row, row["endpoint_name"])


async def by_unique_id(
    tx: Tx, endpoint_id: int, unique_id: str, *, for_update: bool = False
) -> User | None:
    if not ids.is_hex_id(unique_id):
        # Not an id at all (it may even hold characters PostgreSQL refuses): nobody has it.
        return None
    stmt = _BY_UNIQUE_ID_FOR_UPDATE if for_update and tx.is_postgres else _BY_UNIQUE_ID
    return await _one(tx, stmt, {"endpoint_id": endpoint_id, "unique_id": unique_id})


_UNIQUE_ID_MATCH = (
    users.c.endpoint_id == bindparam("endpoint_id"),
    users.c.unique_id == bindparam("unique_id"),
)
_BY_UNIQUE_ID = prepare(_select().where(*_UNIQUE_ID_MATCH))
_BY_UNIQUE_ID_FOR_UPDATE = prepare(_select().where(*_UNIQUE_ID_MATCH).with_for_update(of=users))


async def in_project(tx: Tx, project_id: str, unique_id: str) -> User | None:
    if not ids.is_hex_id(unique_id):
        return None
    stmt = _select().where(endpoints.c.project_id == project_id, users.c.unique_id == unique_id)
    return await _one(tx, stmt)


_BY_PK = prepare(_select().where(users.c.pk == bindparam("pk")))
_BY_PK_FOR_UPDATE = prepare(
    _select().where(users.c.pk == bindparam("pk")).with_for_update(of=users)
)


async def by_pk(tx: Tx, pk: int, *, for_update: bool = False) -> User | None:
    stmt = _BY_PK_FOR_UPDATE if for_update and tx.is_postgres else _BY_PK
    return await _one(tx, stmt, {"pk": pk})


async def by_identifier(
    tx: Tx, endpoint_id: int, username_key: str, email_key: str | None
) -> User | None:
    """A user whose username or email matches; a username match wins."""
    params = {"endpoint_id": endpoint_id, "username": username_key}
    if email_key is None:
        return await _one(tx, _BY_USERNAME, params)
    return await _one(tx, _BY_USERNAME_OR_EMAIL, {**params, "email": email_key})


_BY_USERNAME = prepare(
    _select().where(
        users.c.endpoint_id == bindparam("endpoint_id"),
        users.c.username_canonical == bindparam("username"),
    )
)
_BY_USERNAME_OR_EMAIL = prepare(
    _select()
    .where(
        users.c.endpoint_id == bindparam("endpoint_id"),
        or_(
            users.c.username_canonical == bindparam("username"),
            users.c.email_canonical == bindparam("email"),
        ),
    )
    .order_by((users.c.username_canonical == bindparam("username")).desc())
    .limit(1)
)


async def by_email(tx: Tx, endpoint_id: int, email_key: str) -> User | None:
    stmt = _select().where(users.c.endpoint_id == endpoint_id, users.c.email_canonical == email_key)
    return await _one(tx, stmt)


async def insert_user(tx: Tx, *, endpoint_name: str, values: Mapping[str, Any]) -> User:
    now = now_ms()
    row_values = {"version": 1, "created_at": now, "updated_at": now, **values}
    # No savepoint: a conflict ends the whole transaction (the caller raises), so there is
    # nothing to keep alive after it.
    try:
        stmt, params = insert_values(
            users, row_values, returning=tuple(c.name for c in USER_COLUMNS)
        )
        row = await tx.one(stmt, params)
    except IntegrityError as error:
        raise taken(error) from None
    assert row is not None
    return to_user(row, endpoint_name)


# The versioned UPDATE returns USER_COLUMNS, read by position (every update goes through it).
_read_returned = user_reader(tuple(column.key for column in USER_COLUMNS))


def _update_statement(columns: tuple[str, ...]) -> Prepared:
    """The versioned UPDATE for one set of columns."""

    def build() -> Executable:
        return (
            update(users)
            .where(users.c.pk == bindparam("w_pk"), users.c.version == bindparam("w_version"))
            .values(
                {
                    **value_binds(users, columns),
                    users.c.version: users.c.version + 1,
                    users.c.updated_at: bindparam("now"),
                }
            )
            .returning(*USER_COLUMNS)
        )

    return prepare_once(("update users", columns), build)


async def update_versioned(
    tx: Tx,
    user: User,
    changes: Mapping[str, Any],
    *,
    field_prefix: tuple[str, ...] = (),
) -> User | None:
    """Apply `changes` only if the row still has `user.version` (compare-and-set in the same
    statement). Returns the new row, or None when another writer got there first."""
    params = {f"v_{name}": value for name, value in changes.items()}
    params.update(w_pk=user.pk, w_version=user.version, now=now_ms())
    try:
        values = await tx.one_values(_update_statement(tuple(changes)), params)
    except IntegrityError as error:
        raise taken(error, field_prefix=field_prefix) from None
    return None if values is None else _read_returned(values, user.endpoint)


async def set_password_hash(tx: Tx, pk: int, password_hash: str, old_hash: str) -> None:
    """Store an upgraded hash of the same password (rehash on sign-in); not a user change, so
    the version stays. Guarded by the old hash so a concurrent password change wins."""
    await tx.run(
        update(users)
        .where(users.c.pk == pk, users.c.password_hash == old_hash)
        .values(password_hash=password_hash)
    )
