"""Transient database refusals (serialization failures, deadlocks) are retried, boundedly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from api.core.errors import TransientConflict
from api.services import profile, records, retry
from api.store.engine import retryable
from tests.conftest import ProjectKeys
from tests.gql import UPDATE_ME, UPDATE_USER, gql, sign_up


class _Orig(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("state", "expected"), [("40001", True), ("40P01", True), ("23505", False)]
)
def test_serialization_failures_and_deadlocks_are_retryable(state: str, expected: bool) -> None:
    error = DBAPIError("UPDATE …", {}, _Orig(state))
    assert retryable(error) is expected


async def test_update_user_retries_a_transient_conflict(
    client: httpx.AsyncClient, project: ProjectKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(client, project.api_key)
    real = records._attempt
    calls = 0

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise TransientConflict("deadlock detected")
        return await real(*args, **kwargs)

    monkeypatch.setattr(records, "_attempt", flaky)
    body = await gql(
        client,
        UPDATE_USER,
        {"endpoint": "users", "uniqueId": account.unique_id, "data": {"k": 1}, "strategy": "MERGE"},
        headers=account.auth,
    )
    assert body["data"]["updateUser"]["errors"] == []
    assert body["data"]["updateUser"]["record"]["version"] == 2
    assert calls == 2


async def test_update_me_gives_up_after_bounded_retries(
    client: httpx.AsyncClient, project: ProjectKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = await sign_up(client, project.api_key)
    calls = 0

    async def always(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        raise TransientConflict("could not serialize access")

    monkeypatch.setattr(profile, "_apply", always)
    body = await gql(client, UPDATE_ME, {"input": {"firstName": "A"}}, headers=account.auth)
    assert [e["code"] for e in body["data"]["updateMe"]["errors"]] == ["VERSION_CONFLICT"]
    assert calls == retry.WRITE_ATTEMPTS
