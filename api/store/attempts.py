"""Sign-in (and sign-up, re-authentication) attempts: the throttling ledger."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    false,
    func,
    or_,
    select,
    text,
    union_all,
    update,
)

from api.core.models import SignInAttempt
from api.store.engine import Prepared, Tx, insert_values, prepare
from api.store.rows import reader
from api.store.tables import signin_attempts as t

_ADVISORY_LOCK = prepare(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"))


async def lock(tx: Tx, *keys: str) -> None:
    """Serialise throttle checks on the same keys until the transaction ends.

    On SQLite every write transaction already holds the database's write lock; on PostgreSQL,
    transaction-scoped advisory locks give the same guarantee across instances. Callers pass
    keys in a fixed order, so two transactions never wait on each other in a cycle."""
    if not tx.is_postgres:
        return
    for key in keys:
        await tx.run(_ADVISORY_LOCK, {"key": key})


async def record(
    tx: Tx,
    *,
    endpoint_id: int,
    user_pk: int | None,
    kind: str,
    identifier: str,
    ip: str | None,
    succeeded: bool,
    reason: str | None,
    now: int,
) -> int:
    stmt, params = insert_values(
        t,
        {
            "endpoint_id": endpoint_id,
            "user_pk": user_pk,
            "kind": kind,
            "identifier": identifier[:254],
            "ip": ip,
            "succeeded": succeeded,
            "reason": reason,
            "created_at": now,
        },
        returning=("id",),
    )
    attempt_id = await tx.scalar(stmt, params)
    return int(attempt_id)


async def finish(tx: Tx, attempt_id: int, *, succeeded: bool, reason: str | None) -> None:
    await tx.run(_FINISH, {"attempt_id": attempt_id, "ok": succeeded, "why": reason})


_FINISH = prepare(
    update(t)
    .where(t.c.id == bindparam("attempt_id"))
    .values(succeeded=bindparam("ok"), reason=bindparam("why"))
)


def _failures_where(where: ColumnElement[bool]) -> Prepared:
    return prepare(
        select(func.count().label("n"), func.min(t.c.created_at).label("oldest")).where(
            where,
            t.c.succeeded == false(),
            t.c.created_at >= bindparam("since"),
            t.c.kind != "signup",
        )
    )


_BY_IDENTIFIER = (t.c.endpoint_id == bindparam("endpoint_id")) & (
    t.c.identifier == bindparam("identifier")
)
_FAILURES_OF_IDENTIFIER = _failures_where(_BY_IDENTIFIER)
_FAILURES_OF_IDENTITY = _failures_where(
    (t.c.endpoint_id == bindparam("endpoint_id"))
    & or_(t.c.identifier == bindparam("identifier"), t.c.user_pk == bindparam("user_pk"))
)
_FAILURES_OF_IP = _failures_where(t.c.ip == bindparam("ip"))


async def _count_since(tx: Tx, stmt: Prepared, params: dict[str, Any]) -> tuple[int, int | None]:
    """How many rows the counting statement matched, and the oldest one's time."""
    row = await tx.one(stmt, params)
    assert row is not None
    return int(row["n"]), row["oldest"]


async def failures_for_identity(
    tx: Tx, *, endpoint_id: int, identifier: str, user_pk: int | None, since: int
) -> tuple[int, int | None]:
    """Failures against this identifier, or against the user it names (by any identifier)."""
    params = {"endpoint_id": endpoint_id, "identifier": identifier, "since": since}
    if user_pk is None:
        return await _count_since(tx, _FAILURES_OF_IDENTIFIER, params)
    return await _count_since(tx, _FAILURES_OF_IDENTITY, {**params, "user_pk": user_pk})


async def failures_for_ip(tx: Tx, *, ip: str, since: int) -> tuple[int, int | None]:
    return await _count_since(tx, _FAILURES_OF_IP, {"ip": ip, "since": since})


_SIGNUPS_OF_IP = prepare(
    select(func.count().label("n"), func.min(t.c.created_at).label("oldest")).where(
        t.c.ip == bindparam("ip"), t.c.created_at >= bindparam("since"), t.c.kind == "signup"
    )
)


async def signups_for_ip(tx: Tx, *, ip: str, since: int) -> tuple[int, int | None]:
    """Accounts created from this client address since `since`, and when the oldest was."""
    return await _count_since(tx, _SIGNUPS_OF_IP, {"ip": ip, "since": since})


def _recent(kinds: tuple[str, ...]) -> Select[Any]:
    return (
        select(t)
        .where(t.c.user_pk == bindparam("user_pk"), or_(*(t.c.kind == k for k in kinds)))
        .order_by(t.c.id.desc())
        .limit(bindparam("limit"))
    )


SIGNIN_KINDS = ("signin", "reauth")
SIGNUP_KINDS = ("signup",)
# The two lists every profile answer carries (SPEC §7.3), in one round trip.
_RECENT_SELECT = union_all(
    select(_recent(SIGNIN_KINDS).subquery()), select(_recent(SIGNUP_KINDS).subquery())
)
_RECENT = prepare(_RECENT_SELECT)


_RECENT_COLUMNS = tuple(_RECENT_SELECT.selected_columns.keys())
_read_attempt = reader(SignInAttempt, columns=_RECENT_COLUMNS)
_NOTHING_GIVEN: dict[str, Any] = {}


async def recent_for_user(
    tx: Tx, *, user_pk: int, limit: int = 20
) -> tuple[list[SignInAttempt], list[SignInAttempt]]:
    """The latest sign-in (and re-authentication) attempts, and sign-up attempts, newest
    first: at most `limit` of each."""
    # Read by position: every REST profile answer lists them.
    rows = await tx.all_values(_RECENT, {"user_pk": user_pk, "limit": limit})
    if not rows:
        return [], []
    found = sorted(
        (_read_attempt(r, _NOTHING_GIVEN) for r in rows), key=attrgetter("id"), reverse=True
    )
    return (
        [a for a in found if a.kind in SIGNIN_KINDS],
        [a for a in found if a.kind in SIGNUP_KINDS],
    )
