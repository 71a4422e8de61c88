"""Models built from result rows equal the ones their constructors build."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from api.core.models import Session, User
from api.store.rows import from_row

USER_ROW = {
    "pk": 7,
    "unique_id": "ab" * 16,
    "endpoint_id": 3,
    "username": "ada",
    "email": "ada@example.com",
    "first_name": "Ada",
    "last_name": None,
    "phone_number": None,
    "image_url": "https://example.com/a.png",
    "two_factor_enabled": 0,
    "email_verified": 1,
    "phone_verified": 0,
    "data": {"k": [1, 2]},
    "version": 4,
    "created_at": 1_700_000_000_000,
    "updated_at": 1_700_000_000_123,
    "password_hash": "$argon2id$...",
}


def test_a_user_from_a_row_equals_the_constructed_one() -> None:
    built = from_row(User, USER_ROW, endpoint="main", data={"k": [1, 2]})
    booleans = {"two_factor_enabled": False, "email_verified": True, "phone_verified": False}
    expected = User(**{**USER_ROW, **booleans}, endpoint="main")
    assert built == expected
    assert repr(built) == repr(expected)
    assert all(type(getattr(built, f)) is bool for f in ("email_verified", "phone_verified"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.first_name = "Eve"  # type: ignore[misc]


def test_a_session_from_prefixed_columns_equals_the_constructed_one() -> None:
    row = {
        "s_id": "cd" * 16,
        "s_user_pk": 7,
        "s_created_at": 1,
        "s_expires_at": 2,
        "s_last_seen_at": 3,
        "s_revoked_at": None,
        "s_user_agent": "curl",
        "s_ip": None,
    }
    built = from_row(Session, row, prefix="s_", unique_id="ab" * 16)
    assert built == Session(
        id="cd" * 16,
        user_pk=7,
        unique_id="ab" * 16,
        created_at=1,
        expires_at=2,
        last_seen_at=3,
        revoked_at=None,
        user_agent="curl",
        ip=None,
    )


@dataclass(frozen=True)
class _Unslotted:
    a: int
    b: bool


@dataclass(frozen=True, slots=True)
class _Checked:
    a: int
    b: bool
    seen: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.seen.append(self.a)


def test_models_with_more_than_fields_are_built_by_their_constructor() -> None:
    assert from_row(_Unslotted, {"a": 1, "b": 0}) == _Unslotted(a=1, b=False)
    built = from_row(_Checked, {"a": 2, "b": 1, "seen": []})
    assert built.seen == [2] and built.b is True


def test_a_model_from_a_rows_values_equals_the_one_from_its_dict() -> None:
    columns = ("extra", *USER_ROW)
    values = ["ignored", *USER_ROW.values()]
    by_position = from_row(User, values, columns=columns, endpoint="main", data={"k": [1, 2]})
    assert by_position == from_row(User, USER_ROW, endpoint="main", data={"k": [1, 2]})
    assert all(type(getattr(by_position, f)) is bool for f in ("email_verified", "phone_verified"))


def test_the_session_lookup_reads_its_columns_where_each_engine_returns_them() -> None:
    from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
    from sqlalchemy.dialects.sqlite.pysqlite import dialect as sqlite_dialect

    from api.store.sessions import _OWNER_COLUMNS, _WITH_USER

    for dialect in (sqlite_dialect(), asyncpg_dialect()):
        assert _WITH_USER.plan(dialect).keys == _OWNER_COLUMNS
