"""`updateMe` and the owner's record updates start from the user as the auth check read it; a
change that lands between that read and the write must neither be lost nor turn into a false
version conflict."""

from __future__ import annotations

import httpx
import pytest

from api.core.errors import AmendError, Reason
from api.core.strategy import Strategy
from api.services import profile, records
from api.services.container import Services
from api.services.context import Credentials, RequestContext
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import sign_up


async def _context_read_before_a_concurrent_change(
    services: Services, db: TestDB, token: str
) -> RequestContext:
    ctx = RequestContext(services, Credentials(token=token))
    caller = await ctx.caller()
    assert caller.user.version == 1
    # Another writer changes the row after this request's auth check read it.
    db.sql(
        "UPDATE users SET data = ?, version = version + 1 WHERE pk = ?",
        ('{"plan": "gold", "seen": 1}', caller.user.pk),
    )
    return ctx


async def test_merge_onto_a_stale_read_keeps_the_concurrent_change(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    ctx = await _context_read_before_a_concurrent_change(services, db, account.token)
    user = await profile.update_me(ctx, profile.ProfileChanges(data={"theme": "dark"}))
    assert user.data == {"plan": "gold", "seen": 1, "theme": "dark"}
    assert user.version == 3


async def test_expected_version_is_checked_against_the_current_row_not_a_stale_read(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    ctx = await _context_read_before_a_concurrent_change(services, db, account.token)
    user = await profile.update_me(
        ctx, profile.ProfileChanges(first_name="Ann", expected_version=2)
    )
    assert (user.first_name, user.version) == ("Ann", 3)


async def test_stale_expected_version_is_still_a_version_conflict(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    ctx = await _context_read_before_a_concurrent_change(services, db, account.token)
    with pytest.raises(AmendError) as caught:
        await profile.update_me(ctx, profile.ProfileChanges(first_name="Ann", expected_version=1))
    assert caught.value.reason is Reason.VERSION_CONFLICT


async def test_record_merge_onto_a_stale_read_keeps_the_concurrent_change(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    ctx = await _context_read_before_a_concurrent_change(services, db, account.token)
    result = await records.update_record(
        ctx,
        endpoint="users",
        unique_id=account.unique_id,
        data={"theme": "dark"},
        strategy=Strategy.MERGE,
    )
    assert result.written
    assert result.record.data == {"plan": "gold", "seen": 1, "theme": "dark"}
    assert result.record.version == 3


async def test_record_expected_version_is_checked_against_the_current_row(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key)
    ctx = await _context_read_before_a_concurrent_change(services, db, account.token)
    result = await records.update_record(
        ctx,
        endpoint="users",
        unique_id=account.unique_id,
        data={"theme": "dark"},
        strategy=Strategy.MERGE,
        expected_version=2,
    )
    assert result.record.version == 3
    ctx = RequestContext(services, Credentials(token=account.token))
    with pytest.raises(AmendError) as caught:
        await records.update_record(
            ctx,
            endpoint="users",
            unique_id=account.unique_id,
            data={"theme": "light"},
            strategy=Strategy.MERGE,
            expected_version=2,
        )
    assert caught.value.reason is Reason.VERSION_CONFLICT
