"""CORS decisions: which origins may read responses in a browser."""

from __future__ import annotations

from api.security import keys
from api.services.container import Services
from api.store import projects


async def origin_listed(services: Services, origin: str, api_key: str | None) -> bool:
    """Listed by the project the request names (`key`), or, naming none, by any project.

    A project without an allow-list accepts any origin for its requests, but it does not make
    every origin "listed" here: credentials are only exposed to origins somebody listed."""
    async with services.db.read() as tx:
        if api_key is not None:
            project = await projects.by_api_key_digest(tx, keys.digest(api_key))
            return project is not None and (
                origin in project.allowed_origins or "*" in project.allowed_origins
            )
        return await projects.any_allows_origin(tx, origin)
