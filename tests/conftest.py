"""Fixtures: each test gets its own database (a copy of one migrated template), its own app,
and an httpx client speaking real HTTP semantics to the ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from api.app import create_app
from api.config import Settings
from api.core.models import Plan
from api.services import projects
from api.services.container import Services
from tests.db import TestDB, drop, drop_template, fresh, make_template

# Property tests run on busy CI machines and beside the whole suite: a slow example is not a
# failure (no deadline, no "too slow" health check); what each property asserts is.
settings.register_profile("amend", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("amend")

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
# Cheap hashing for the suite (configuration, not a code path); tests of the production
# parameters build their own settings.
CHEAP_ARGON2 = {
    "AMEND_ARGON2_MEMORY_KIB": "64",
    "AMEND_ARGON2_TIME_COST": "1",
    "AMEND_ARGON2_PARALLELISM": "1",
}
PASSWORD = "Zght943!x"


def make_settings(database_url: str, **env: str) -> Settings:
    base = {
        "AMEND_DATABASE_URL": database_url,
        "AMEND_SECRET_KEY": SECRET,
        **CHEAP_ARGON2,
        **env,
    }
    return Settings.from_env(base, env_file=None)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    template = make_template(tmp_path_factory.mktemp("template"))
    yield template
    drop_template(template)


@pytest.fixture
def db(tmp_path: Path, template_db: str) -> Iterator[TestDB]:
    """This test's own database (SQLite file or PostgreSQL database)."""
    database = fresh(template_db, tmp_path)
    yield database
    drop(database)


@pytest.fixture
def settings_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """Configuration for the test's app: parametrize it (directly or `indirect=True`) or
    override it in a module."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(db: TestDB, settings_env: dict[str, str]) -> Settings:
    return make_settings(db.url, **settings_env)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    svc = Services.build(settings)
    yield svc
    await svc.close()


@pytest.fixture
async def client(settings: Settings, services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass
class ProjectKeys:
    id: str
    api_key: str
    master_key: str


@pytest.fixture
async def project(services: Services) -> ProjectKeys:
    created = await projects.create_project(services, name="acme")
    return ProjectKeys(created.project.id, created.api_key, created.master_key)


async def make_project(services: Services, name: str, **kwargs: Any) -> ProjectKeys:
    created = await projects.create_project(services, name=name, **kwargs)
    return ProjectKeys(created.project.id, created.api_key, created.master_key)


@pytest.fixture
def make_project_fn(services: Services) -> Any:
    async def make(name: str, plan: Plan = Plan.PERSONAL, **kwargs: Any) -> ProjectKeys:
        return await make_project(services, name, plan=plan, **kwargs)

    return make
