"""Projects, their allowed origins, and their endpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select, update

from api.core.clock import now_ms
from api.core.models import Endpoint, Plan, Project
from api.store.engine import Tx
from api.store.tables import endpoints, project_origins, projects

_project_cols = (
    projects.c.id,
    projects.c.name,
    projects.c.plan,
    projects.c.allow_no_origin,
)


async def _origins(tx: Tx, project_id: str) -> tuple[str, ...]:
    result = await tx.conn.execute(
        select(project_origins.c.origin)
        .where(project_origins.c.project_id == project_id)
        .order_by(project_origins.c.origin)
    )
    return tuple(result.scalars())


async def _view(tx: Tx, row: Any) -> Project | None:
    if row is None:
        return None
    return Project(
        id=row.id,
        name=row.name,
        plan=Plan(row.plan),
        allow_no_origin=bool(row.allow_no_origin),
        allowed_origins=await _origins(tx, row.id),
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
    await tx.conn.execute(
        insert(projects).values(
            id=project_id,
            name=name,
            plan=plan.value,
            allow_no_origin=allow_no_origin,
            api_key_digest=api_key_digest,
            master_key_digest=master_key_digest,
            created_at=now_ms(),
        )
    )
    for origin in dict.fromkeys(allowed_origins):
        await tx.conn.execute(insert(project_origins).values(project_id=project_id, origin=origin))
    project = await by_id(tx, project_id)
    assert project is not None
    return project


async def by_id(tx: Tx, project_id: str) -> Project | None:
    row = (await tx.conn.execute(select(*_project_cols).where(projects.c.id == project_id))).first()
    return await _view(tx, row)


async def by_name(tx: Tx, name: str) -> Project | None:
    row = (await tx.conn.execute(select(*_project_cols).where(projects.c.name == name))).first()
    return await _view(tx, row)


async def by_api_key_digest(tx: Tx, digest: str) -> Project | None:
    stmt = select(*_project_cols).where(projects.c.api_key_digest == digest)
    return await _view(tx, (await tx.conn.execute(stmt)).first())


async def by_master_key_digest(tx: Tx, digest: str) -> Project | None:
    stmt = select(*_project_cols).where(projects.c.master_key_digest == digest)
    return await _view(tx, (await tx.conn.execute(stmt)).first())


async def set_keys(tx: Tx, project_id: str, *, api_key_digest: str, master_key_digest: str) -> None:
    await tx.conn.execute(
        update(projects)
        .where(projects.c.id == project_id)
        .values(api_key_digest=api_key_digest, master_key_digest=master_key_digest)
    )


async def any_allows_origin(tx: Tx, origin: str) -> bool:
    stmt = select(project_origins.c.project_id).where(project_origins.c.origin.in_((origin, "*")))
    return (await tx.conn.execute(stmt.limit(1))).first() is not None


async def create_endpoint(tx: Tx, project_id: str, name: str) -> Endpoint:
    result = await tx.conn.execute(
        insert(endpoints)
        .values(project_id=project_id, name=name, created_at=now_ms())
        .returning(endpoints.c.id)
    )
    return Endpoint(id=result.scalar_one(), project_id=project_id, name=name)


async def endpoint(tx: Tx, project_id: str, name: str) -> Endpoint | None:
    row = (
        await tx.conn.execute(
            select(endpoints.c.id).where(
                endpoints.c.project_id == project_id, endpoints.c.name == name
            )
        )
    ).first()
    return None if row is None else Endpoint(id=row.id, project_id=project_id, name=name)


async def endpoint_names(tx: Tx, project_id: str) -> list[str]:
    result = await tx.conn.execute(
        select(endpoints.c.name)
        .where(endpoints.c.project_id == project_id)
        .order_by(endpoints.c.id)
    )
    return list(result.scalars())
