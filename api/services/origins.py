"""CORS decisions that come before a request's project is known: preflights, handshakes."""

from __future__ import annotations

from api.security import keys
from api.services.container import Services
from api.store import projects


async def origin_listed(services: Services, origin: str, api_key: str | None) -> bool:
    """Listed by the project the request names (`key`), or, naming none, listed exactly by
    some project.

    A project's `*` opens only that project's own answers: counting it for a request that
    names no project would open every other tenant's users to any origin. A project without
    an allow-list accepts any origin for its requests, but it does not make every origin
    "listed" here: credentials are only exposed to origins somebody listed."""
    async with services.db.read() as tx:
        if api_key is not None:
            project = await projects.by_api_key_digest(tx, keys.digest(api_key))
            return project is not None and project.lists_origin(origin)
        return await projects.any_lists_origin_exactly(tx, origin)
