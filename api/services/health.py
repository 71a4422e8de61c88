"""Readiness and operational gauges, read from the database."""

from __future__ import annotations

from dataclasses import dataclass

from api.services.container import Services
from api.store import migrate, stats


@dataclass(frozen=True)
class Readiness:
    database: bool
    migrations_current: bool

    @property
    def ready(self) -> bool:
        return self.database and self.migrations_current


async def readiness(services: Services) -> Readiness:
    try:
        current = await migrate.current_revision(services.db)
    except Exception:  # any failure to reach the database means "not ready"
        return Readiness(database=False, migrations_current=False)
    return Readiness(database=True, migrations_current=current == migrate.head_revision())


async def gauges(services: Services) -> dict[str, tuple[str, float]]:
    async with services.db.read() as tx:
        failures = await stats.failed_signins(tx)
        backlog = await stats.outbox_backlog(tx)
    return {
        "amend_signin_failures_total": ("Failed sign-in attempts recorded.", failures),
        "amend_outbox_backlog": ("Security notices not yet delivered.", backlog),
    }
