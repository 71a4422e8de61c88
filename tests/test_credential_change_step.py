"""Every route that changes a credential goes through the one credential-change step, and the
step does everything a credential change implies: every session is revoked, one notice is
queued, the change event is emitted and the audit entry is written."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.core.models import User
from api.services import credential_change
from api.services.container import Services
from api.store import Tx
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import ME, UPDATE_CREDENTIALS, Account, gql, sign_up
from tests.mail import queued
from tests.test_notices import CHANGES, EMAIL, NEW_EMAIL

CONFIRM = """
mutation($code: String!) {
  confirmEmailChange(code: $code) { reauthenticationRequired errors { code } }
}"""


@dataclass(frozen=True)
class Route:
    run: Callable[[httpx.AsyncClient, ProjectKeys, Account, TestDB], Awaitable[None]]
    action: str
    env: dict[str, str]


def _immediate(name: str) -> Route:
    change = CHANGES[name]
    action = "update_user" if "updateUser" in name or "7.1" in name else "update_credentials"

    async def run(c: httpx.AsyncClient, p: ProjectKeys, a: Account, db: TestDB) -> None:
        await change.run(c, p, a)

    return Route(run, action, {})


async def _verified_email_change(
    client: httpx.AsyncClient, project: ProjectKeys, account: Account, db: TestDB
) -> None:
    body = await gql(
        client, UPDATE_CREDENTIALS, {"input": {"email": NEW_EMAIL}}, headers=account.auth
    )
    assert body["data"]["updateCredentials"]["errors"] == [], body
    [code_body] = queued(db, kind="email_change_code")
    match = re.search(r"\b(\d{6})\b", code_body)
    assert match, code_body
    body = await gql(client, CONFIRM, {"code": match.group(1)}, headers=account.auth)
    assert body["data"]["confirmEmailChange"]["errors"] == [], body


ROUTES: dict[str, Route] = {name: _immediate(name) for name in CHANGES}
ROUTES["graphql-confirmEmailChange"] = Route(
    _verified_email_change, "confirm_email_change", {"AMEND_EMAIL_CHANGE": "verify"}
)


@pytest.mark.parametrize(
    ("route", "settings_env"),
    [(name, route.env) for name, route in ROUTES.items()],
    indirect=["settings_env"],
)
async def test_every_credential_route_takes_the_one_step(
    route: str,
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jane = await sign_up(client, project.api_key, "jane", email=EMAIL)
    steps: list[tuple[str, tuple[str, ...]]] = []
    emitted: list[int] = []
    real_step = credential_change.committed
    real_changed = services.events.changed

    async def step(ctx: Any, tx: Tx, updated: User, change: Any, *, now: int) -> None:
        steps.append((change.action, change.fields))
        await real_step(ctx, tx, updated, change, now=now)

    async def changed(tx: Tx, user_pk: int, *, notified: bool = False) -> None:
        emitted.append(user_pk)
        await real_changed(tx, user_pk, notified=notified)

    monkeypatch.setattr(credential_change, "committed", step)
    monkeypatch.setattr(services.events, "changed", changed)

    await ROUTES[route].run(client, project, jane, db)

    action = ROUTES[route].action
    assert [a for a, _ in steps] == [action]
    [(user_pk,)] = db.sql("SELECT pk FROM users WHERE unique_id = ?", (jane.unique_id,))
    assert emitted == [user_pk]
    # Every session is revoked: the token that made the change no longer works.
    assert db.sql(
        "SELECT count(*) FROM sessions WHERE user_pk = ? AND revoked_at IS NULL", (user_pk,)
    ) == [(0,)]
    body = await gql(client, ME, headers=jane.auth)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
    # One notice, to the address the account had before the change.
    assert db.sql(
        'SELECT "to" FROM outbox WHERE kind IN '
        "('credentials_changed', 'email_change_revert', 'password_changed')"
    ) == [(EMAIL,)]
    # One audit entry naming the route's action.
    assert db.sql(
        "SELECT count(*) FROM audit_events WHERE user_pk = ? AND action = ?", (user_pk, action)
    ) == [(1,)]
    assert db.sql("SELECT count(*) FROM email_changes") == [(0,)]
