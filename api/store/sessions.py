"""Sessions ("signins") and the per-request auth lookup."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, select, update

from api.core.frozen import quick_init
from api.core.models import Plan, Project, Session, User
from api.store.engine import Tx, insert_values, prepare
from api.store.rows import reader
from api.store.tables import endpoints, projects, sessions, users
from api.store.users import USER_COLUMNS, user_reader

_SESSION_COLUMNS = (
    sessions.c.id.label("s_id"),
    sessions.c.user_pk.label("s_user_pk"),
    sessions.c.created_at.label("s_created_at"),
    sessions.c.expires_at.label("s_expires_at"),
    sessions.c.last_seen_at.label("s_last_seen_at"),
    sessions.c.revoked_at.label("s_revoked_at"),
    sessions.c.user_agent.label("s_user_agent"),
    sessions.c.ip.label("s_ip"),
)


def _session_reader(columns: tuple[str, ...]) -> Callable[[Sequence[Any], str], Session]:
    """`(values, unique_id) -> Session` for rows holding `_SESSION_COLUMNS`, read by position
    in `columns` (the statement's column list)."""
    build = reader(Session, prefix="s_", columns=columns, given=("unique_id",))

    def read(values: Sequence[Any], unique_id: str) -> Session:
        return build(values, {"unique_id": unique_id})

    return read


async def create(
    tx: Tx,
    *,
    session_hex: str,
    user: User,
    now: int,
    ttl_ms: int,
    user_agent: str | None,
    ip: str | None,
) -> Session:
    values: dict[str, Any] = {
        "id": session_hex,
        "user_pk": user.pk,
        "created_at": now,
        "expires_at": now + ttl_ms,
        "last_seen_at": now,
        "user_agent": (user_agent or "")[:512] or None,
        "ip": ip,
    }
    await tx.run(*insert_values(sessions, values))
    return Session(
        id=session_hex,
        user_pk=user.pk,
        unique_id=user.unique_id,
        created_at=now,
        expires_at=now + ttl_ms,
        last_seen_at=now,
        revoked_at=None,
        user_agent=values["user_agent"],
        ip=ip,
    )


@quick_init
@dataclass(frozen=True, slots=True)
class SessionOwner:
    """The session, its user, and the user's project (its origin list not read: empty)."""

    session: Session
    user: User
    project: Project


# `Plan(value)` goes through the enum machinery: a table lookup for every row.
_PLANS = {plan.value: plan for plan in Plan}


# Built once: every authenticated request runs it, and building a statement costs more than
# SQLite takes to answer it.
_WITH_USER_SELECT = (
    select(
        *_SESSION_COLUMNS,
        *USER_COLUMNS,
        endpoints.c.name.label("endpoint_name"),
        projects.c.id.label("project_id"),
        projects.c.name.label("project_name"),
        projects.c.plan.label("project_plan"),
        projects.c.allow_no_origin.label("project_allow_no_origin"),
    )
    .select_from(sessions)
    .join(users, users.c.pk == sessions.c.user_pk)
    .join(endpoints, endpoints.c.id == users.c.endpoint_id)
    .join(projects, projects.c.id == endpoints.c.project_id)
    .where(sessions.c.id == bindparam("session_hex"))
)
_WITH_USER = prepare(_WITH_USER_SELECT)


# Its columns, in order: the row is read by position (see `with_user`).
_OWNER_COLUMNS = tuple(_WITH_USER_SELECT.selected_columns.keys())
_ENDPOINT_NAME, _PROJECT_ID, _PROJECT_NAME, _PROJECT_PLAN, _PROJECT_ALLOW_NO_ORIGIN = (
    _OWNER_COLUMNS.index(name)
    for name in (
        "endpoint_name",
        "project_id",
        "project_name",
        "project_plan",
        "project_allow_no_origin",
    )
)


_read_user = user_reader(_OWNER_COLUMNS)
_read_session = _session_reader(_OWNER_COLUMNS)
# A project as the auth lookup reads it, by its columns' values: the same few projects are
# read on every request, and a lookup costs a quarter of building one.
_OWNER_PROJECTS: dict[tuple[str, str, str, bool], Project] = {}
_OWNER_PROJECTS_CAP = 1024


def _owner_project(id_: str, name: str, plan: str, allow_no_origin: bool) -> Project:
    key = (id_, name, plan, allow_no_origin)
    project = _OWNER_PROJECTS.get(key)
    if project is None:
        if len(_OWNER_PROJECTS) >= _OWNER_PROJECTS_CAP:
            _OWNER_PROJECTS.clear()
        project = _OWNER_PROJECTS[key] = Project(
            id=id_,
            name=name,
            plan=_PLANS.get(plan) or Plan(plan),
            allowed_origins=(),
            allow_no_origin=allow_no_origin,
        )
    return project


async def with_user(tx: Tx, session_hex: str) -> SessionOwner | None:
    """One round trip for the per-request auth check: session joined with user and project.
    Its row is read as values, by position: a dict for it cost as much as the rest of
    building the models."""
    values = await tx.one_values(_WITH_USER, {"session_hex": session_hex})
    if values is None:
        return None
    user = _read_user(values, values[_ENDPOINT_NAME])
    project = _owner_project(
        values[_PROJECT_ID],
        values[_PROJECT_NAME],
        values[_PROJECT_PLAN],
        bool(values[_PROJECT_ALLOW_NO_ORIGIN]),
    )
    session = _read_session(values, user.unique_id)
    return SessionOwner(session=session, user=user, project=project)


_ACTIVE = prepare(
    select(*_SESSION_COLUMNS)
    .where(
        sessions.c.user_pk == bindparam("user_pk"),
        sessions.c.revoked_at.is_(None),
        sessions.c.expires_at > bindparam("now"),
    )
    .order_by(sessions.c.created_at.desc(), sessions.c.id)
    .limit(100)
)


_read_active = _session_reader(tuple(c.key for c in _SESSION_COLUMNS))


async def active_for_user(tx: Tx, user: User, now: int) -> list[Session]:
    # Read by position: every REST profile answer lists the caller's sessions.
    rows = await tx.all_values(_ACTIVE, {"user_pk": user.pk, "now": now})
    unique_id = user.unique_id
    return [_read_active(r, unique_id) for r in rows]


async def revoke(tx: Tx, *, session_hex: str, user_pk: int, now: int) -> bool:
    count = await tx.run(
        update(sessions)
        .where(
            and_(
                sessions.c.id == session_hex,
                sessions.c.user_pk == user_pk,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
            )
        )
        .values(revoked_at=now)
    )
    return bool(count)


async def revoke_all(tx: Tx, *, user_pk: int, now: int) -> int:
    return await tx.run(
        update(sessions)
        .where(sessions.c.user_pk == user_pk, sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def touch_many(tx: Tx, used: Mapping[str, int]) -> None:
    """Record when each session was last used (never moving `last_seen_at` back)."""
    for session_hex, now in used.items():
        await tx.run(_TOUCH, {"session_hex": session_hex, "now": now})


_TOUCH = prepare(
    update(sessions)
    .where(sessions.c.id == bindparam("session_hex"), sessions.c.last_seen_at < bindparam("now"))
    .values(last_seen_at=bindparam("now"))
)
