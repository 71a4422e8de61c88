"""Projects, their allowed origins, and their endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, update

from api.core.clock import now_ms
from api.core.models import Endpoint, Plan, Project
from api.store.engine import Prepared, Tx, insert_values, prepare
from api.store.tables import endpoints, project_origins, projects

_project_cols = (
    projects.c.id,
    projects.c.name,
    projects.c.plan,
    projects.c.allow_no_origin,
)


_ORIGINS = prepare(
    select(project_origins.c.origin)
    .where(project_origins.c.project_id == bindparam("project_id"))
    .order_by(project_origins.c.origin)
)


def _by(column: Any) -> Prepared:
    return prepare(select(*_project_cols).where(column == bindparam("value")))


_BY_ID = _by(projects.c.id)
_BY_NAME = _by(projects.c.name)
_BY_API_KEY = _by(projects.c.api_key_digest)
_BY_MASTER_KEY = _by(projects.c.master_key_digest)
_ENDPOINT = prepare(
    select(endpoints.c.id).where(
        endpoints.c.project_id == bindparam("project_id"), endpoints.c.name == bindparam("name")
    )
)


async def _origins(tx: Tx, project_id: str) -> tuple[str, ...]:
    rows = await tx.all(_ORIGINS, {"project_id": project_id})
    return tuple(r["origin"] for r in rows)


async def _view(tx: Tx, stmt: Prepared, value: str) -> Project | None:
    row = await tx.one(stmt, {"value": value})
    if row is None:
        return None
    return Project(
        id=row["id"],
        name=row["name"],
        plan=Plan(row["plan"]),
        allow_no_origin=bool(row["allow_no_origin"]),
        allowed_origins=await _origins(tx, row["id"]),
    )


async def create(
    tx: Tx,
    *,
    project_id: str,
    name: str,
    plan: Plan,
    allowed_origins: Sequence[str],
    allow_no_origin: bool,
    api_key_digest: str,
    master_key_digest: str,
) -> Project:
    values = {
        "id": project_id,
        "name": name,
        "plan": plan.value,
        "allow_no_origin": allow_no_origin,
        "api_key_digest": api_key_digest,
        "master_key_digest": master_key_digest,
        "created_at": now_ms(),
    }
    await tx.run(*insert_values(projects, values))
    for origin in dict.fromkeys(allowed_origins):
        await tx.run(*insert_values(project_origins, {"project_id": project_id, "origin": origin}))
    project = await by_id(tx, project_id)
    assert project is not None
    return project


async def by_id(tx: Tx, project_id: str) -> Project | None:
    return await _view(tx, _BY_ID, project_id)


async def by_name(tx: Tx, name: str) -> Project | None:
    return await _view(tx, _BY_NAME, name)


async def by_api_key_digest(tx: Tx, digest: str) -> Project | None:
    return await _view(tx, _BY_API_KEY, digest)


async def by_master_key_digest(tx: Tx, digest: str) -> Project | None:
    return await _view(tx, _BY_MASTER_KEY, digest)


async def set_keys(tx: Tx, project_id: str, *, api_key_digest: str, master_key_digest: str) -> None:
    await tx.run(
        update(projects)
        .where(projects.c.id == project_id)
        .values(api_key_digest=api_key_digest, master_key_digest=master_key_digest)
    )


async def any_lists_origin_exactly(tx: Tx, origin: str) -> bool:
    """Whether some project lists this exact origin (a project's `*` does not count)."""
    return await tx.one(_LISTS_EXACTLY, {"origin": origin}) is not None


_LISTS_EXACTLY = prepare(
    select(project_origins.c.project_id)
    .where(project_origins.c.origin == bindparam("origin"))
    .limit(1)
)


async def create_endpoint(tx: Tx, project_id: str, name: str) -> Endpoint:
    values = {"project_id": project_id, "name": name, "created_at": now_ms()}
    endpoint_id = await tx.scalar(*insert_values(endpoints, values, returning=("id",)))
    return Endpoint(id=int(endpoint_id), project_id=project_id, name=name)


async def endpoint(tx: Tx, project_id: str, name: str) -> Endpoint | None:
    row = await tx.one(_ENDPOINT, {"project_id": project_id, "name": name})
    return None if row is None else Endpoint(id=row["id"], project_id=project_id, name=name)


async def endpoint_names(tx: Tx, project_id: str) -> list[str]:
    rows = await tx.all(
        select(endpoints.c.name)
        .where(endpoints.c.project_id == project_id)
        .order_by(endpoints.c.id)
    )
    return [r["name"] for r in rows]
