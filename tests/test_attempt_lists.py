"""The profile answer's two attempt lists come from one query; each keeps its own limit."""

from __future__ import annotations

import httpx

from api.services.container import Services
from api.store import attempts
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import sign_up


async def test_each_list_is_limited_on_its_own_and_newest_first(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key)  # records the sign-up attempt
    [(user_pk, endpoint_id)] = db.sql("SELECT pk, endpoint_id FROM users")
    async with services.db.write() as tx:
        for i, kind in enumerate(["signin", "reauth"] * 5):
            await attempts.record(
                tx,
                endpoint_id=endpoint_id,
                user_pk=user_pk,
                kind=kind,
                identifier="jane",
                ip=None,
                succeeded=i % 3 != 0,
                reason=None,
                now=2_000_000_000_000 + i,
            )
    async with services.db.read() as tx:
        signins, signups = await attempts.recent_for_user(tx, user_pk=user_pk, limit=3)
        assert await attempts.recent_for_user(tx, user_pk=user_pk + 1) == ([], [])
    assert [a.kind for a in signins] == ["reauth", "signin", "reauth"]
    assert [a.created_at for a in signins] == [
        2_000_000_000_009,
        2_000_000_000_008,
        2_000_000_000_007,
    ]
    assert [a.kind for a in signups] == ["signup"]
    assert signups[0].succeeded
