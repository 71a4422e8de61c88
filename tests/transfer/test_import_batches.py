"""An import of many batches: checked in a worker process or here, written as bound inserts
or the careful way when a user appears between the two passes."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from api.services import import_check, import_write, user_import
from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.db import TestDB
from tests.gql import sign_up
from tests.transfer.helpers import FORMATS, PASSWORD, jsonl, problems, run_import, user_count

HASH = FORMATS["bcrypt_2b"](PASSWORD)


def many_lines() -> bytes:
    """Good lines across several batches (of 7), with bad lines and duplicates among them."""
    docs: list[Any] = [
        {"username": f"user{i}", "email": f"user{i}@example.com", "password_hash": HASH}
        for i in range(60)
    ]
    docs[3] = b"{not json"
    docs[15] = {"username": "user1"}  # a duplicate of an earlier batch's line
    docs[22] = {"username": "x", "email": "nope"}
    docs[40] = {"username": "y", "email": "USER30@example.com"}  # a duplicate, case aside
    docs[58] = {"username": "z", "password": PASSWORD}  # plain: hashed here, not in the worker
    return jsonl(*docs)


EXPECTED = [
    (4, None, "INVALID_FIELD"),
    (16, "username", "USERNAME_TAKEN"),
    (23, "email", "INVALID_EMAIL"),
    (41, "email", "EMAIL_TAKEN"),
]


@pytest.mark.parametrize("cpus", [1, 2])
async def test_batches_checked_in_a_worker_or_here_give_the_same_import(
    cpus: int,
    monkeypatch: pytest.MonkeyPatch,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
) -> None:
    monkeypatch.setattr(user_import, "BATCH", 7)
    monkeypatch.setattr(import_check, "usable_cpus", lambda: cpus)
    refused = await run_import(services, many_lines())
    assert (problems(refused), refused.imported, user_count(db)) == (EXPECTED, 0, 0)
    report = await run_import(services, many_lines(), skip_invalid=True)
    assert (problems(report), report.imported, report.skipped) == (EXPECTED, 56, 0)
    assert user_count(db) == 56
    stamps = [uid[:12] for (uid,) in db.sql("SELECT unique_id FROM users ORDER BY pk")]
    assert stamps == sorted(stamps)  # generated ids start with the time they were made
    events = db.sql("SELECT COUNT(*) FROM audit_events WHERE action = 'import'")[0][0]
    assert events == 56
    again = await run_import(services, many_lines(), skip_invalid=True)
    assert (again.imported, again.skipped, user_count(db)) == (0, 56, 56)


@pytest.mark.parametrize(
    ("mode", "imported", "updated", "skipped", "bad"),
    [
        ("skip", 2, 0, 1, []),
        ("update", 2, 1, 0, []),
        ("fail", 2, 0, 0, [(2, "username", "USERNAME_TAKEN")]),
    ],
)
async def test_a_user_made_between_the_two_passes_is_a_conflict_of_the_batch(
    mode: str,
    imported: int,
    updated: int,
    skipped: int,
    bad: list[tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
    client: httpx.AsyncClient,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
) -> None:
    """The bound inserts meet the new user's unique username: the batch is rolled back and
    written again the careful way, the line treated as any conflict of its mode."""
    batch = import_write.Writer.batch

    async def after_a_sign_up(writer: import_write.Writer, raws: list[bytes]) -> Any:
        await sign_up(client, project.api_key, "late", PASSWORD, email="late@example.com")
        return await batch(writer, raws)

    monkeypatch.setattr(import_write.Writer, "batch", after_a_sign_up)
    data = jsonl(
        {"username": "early", "password_hash": HASH},
        {"username": "Late", "first_name": "Late", "password_hash": HASH},
        {"username": "other", "email": "other@example.com"},
    )
    report = await run_import(services, data, on_conflict=mode, skip_invalid=True)
    assert (report.imported, report.updated, report.skipped) == (imported, updated, skipped)
    assert problems(report) == bad
    assert user_count(db) == 3
    late = db.sql(
        "SELECT username, first_name, version FROM users WHERE email = ?", ("late@example.com",)
    )
    assert late == ([("Late", "Late", 2)] if mode == "update" else [("late", None, 1)])


def _dies_after_line_20(batch: tuple[list[tuple[int, bytes | None]], int]) -> Any:
    if batch[0][0][0] > 20:
        os._exit(1)  # the worker is killed
    return CHECK_IN_WORKER(batch)


CHECK_IN_WORKER = import_check._check_in_worker


async def test_batches_left_by_a_dead_worker_are_checked_here(
    monkeypatch: pytest.MonkeyPatch, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    monkeypatch.setattr(user_import, "BATCH", 7)
    monkeypatch.setattr(import_check, "usable_cpus", lambda: 2)
    monkeypatch.setattr(import_check, "_check_in_worker", _dies_after_line_20)
    report = await run_import(services, many_lines(), skip_invalid=True)
    assert (problems(report), report.imported, user_count(db)) == (EXPECTED, 56, 56)
