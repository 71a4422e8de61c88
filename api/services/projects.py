"""Projects and endpoints (administration from the CLI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from api.core import ids
from api.core.errors import AmendError, Reason
from api.core.models import Endpoint, Plan, Project
from api.core.policy import DEFAULT_ENDPOINT, validate_endpoint_name
from api.security import keys
from api.services.container import Services
from api.store import Tx, projects

PROJECT_PREFIX = "prj_"


@dataclass(frozen=True)
class CreatedProject:
    project: Project
    api_key: str
    master_key: str  # shown once; only its digest is stored
    endpoints: list[str]

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.project.id,
            "name": self.project.name,
            "api_key": self.api_key,
            "master_key": self.master_key,
            "plan": self.project.plan.value,
            "allowed_origins": list(self.project.allowed_origins),
            "allow_no_origin": self.project.allow_no_origin,
            "endpoints": self.endpoints,
        }


def _check_origins(origins: Sequence[str]) -> list[str]:
    checked = []
    for origin in origins:
        origin = origin.strip().rstrip("/")
        if origin != "*" and not (
            origin.startswith(("http://", "https://")) and "/" not in origin.split("://", 1)[1]
        ):
            raise AmendError(Reason.INVALID_FIELD, f"not an origin: {origin!r}", field=("origin",))
        checked.append(origin)
    return checked


async def create_project(
    services: Services,
    *,
    name: str,
    origins: Sequence[str] = (),
    allow_no_origin: bool = True,
    plan: Plan = Plan.PERSONAL,
) -> CreatedProject:
    name = name.strip()
    if not name or len(name) > 100:
        raise AmendError(Reason.INVALID_FIELD, "a project name has 1 to 100 characters")
    api_key, master_key = keys.new_api_key(), keys.new_master_key()
    async with services.db.write() as tx:
        if await projects.by_name(tx, name) is not None:
            raise AmendError(
                Reason.INVALID_FIELD, f"a project named {name!r} exists", field=("name",)
            )
        project = await projects.create(
            tx,
            project_id=PROJECT_PREFIX + ids.new_hex_id(),
            name=name,
            plan=plan,
            allowed_origins=_check_origins(origins),
            allow_no_origin=allow_no_origin,
            api_key_digest=keys.digest(api_key),
            master_key_digest=keys.digest(master_key),
        )
        await projects.create_endpoint(tx, project.id, DEFAULT_ENDPOINT)
    return CreatedProject(project, api_key, master_key, [DEFAULT_ENDPOINT])


async def _find(tx: Tx, id_or_name: str) -> Project:
    project = await projects.by_id(tx, id_or_name) or await projects.by_name(tx, id_or_name)
    if project is None:
        raise AmendError(Reason.INVALID_API_KEY, f"no project {id_or_name!r}")
    return project


async def create_endpoint(services: Services, *, project: str, name: str) -> Endpoint:
    validate_endpoint_name(name)
    async with services.db.write() as tx:
        found = await _find(tx, project)
        if await projects.endpoint(tx, found.id, name) is not None:
            raise AmendError(Reason.INVALID_ENDPOINT, f"endpoint {name!r} exists", field=("name",))
        return await projects.create_endpoint(tx, found.id, name)


async def rotate_keys(services: Services, *, project: str) -> CreatedProject:
    """New API and master keys for a project (the old ones stop working at once)."""
    api_key, master_key = keys.new_api_key(), keys.new_master_key()
    async with services.db.write() as tx:
        found = await _find(tx, project)
        await projects.set_keys(
            tx,
            found.id,
            api_key_digest=keys.digest(api_key),
            master_key_digest=keys.digest(master_key),
        )
        names = await projects.endpoint_names(tx, found.id)
    return CreatedProject(found, api_key, master_key, names)


async def ensure_demo(services: Services, *, name: str = "demo") -> CreatedProject:
    """The dev-mode demo project: created on first start, its keys rotated on every start so
    they can be printed (only digests are stored)."""
    async with services.db.read() as tx:
        exists = await projects.by_name(tx, name) is not None
    if exists:
        return await rotate_keys(services, project=name)
    return await create_project(services, name=name)
