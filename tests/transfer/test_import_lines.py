"""`amend users import` semantics: bad lines, duplicates, conflicts, dry runs, audit."""

from __future__ import annotations

import httpx
import pytest

from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.db import TestDB, json_column
from tests.gql import sign_in, sign_up
from tests.transfer.helpers import (
    FORMATS,
    PASSWORD,
    jsonl,
    problems,
    run_import,
    stored,
    user_count,
)

GOOD = {"username": "good", "email": "good@example.com", "password_hash": "$1$abc$"}
UID = "0123456789abcdef0123456789abcdef"


def good(n: int, **extra: object) -> dict[str, object]:
    return {"username": f"user{n}", "email": f"user{n}@example.com", **extra}


BAD_LINES: list[tuple[bytes | dict[str, object], str | None, str]] = [
    (b"{not json", None, "INVALID_FIELD"),
    (b"[1, 2]", None, "NOT_AN_OBJECT"),
    ({"email": "a@example.com"}, "username", "REQUIRED_FIELD_MISSING"),
    ({"username": "   "}, "username", "REQUIRED_FIELD_MISSING"),
    ({"username": "a\u200bb"}, "username", "INVALID_FIELD"),
    ({"username": "u", "email": "not-an-address"}, "email", "INVALID_EMAIL"),
    ({"username": "u", "password": "short"}, "password", "PASSWORD_POLICY"),
    ({"username": "u", "password": "password1"}, "password", "PASSWORD_POLICY"),
    ({"username": "u", "phone_number": "555-1234"}, "phone_number", "INVALID_FIELD"),
    ({"username": "u", "image_url": "javascript:alert(1)"}, "image_url", "INVALID_FIELD"),
    ({"username": "u", "first_name": "x" * 101}, "first_name", "INVALID_FIELD"),
    ({"username": "u", "data": [1]}, "data", "NOT_AN_OBJECT"),
    ({"username": "u", "data": {"password": "x"}}, "data.password", "FIELD_NOT_ALLOWED"),
    ({"username": "u", "unique_id": "XYZ"}, "unique_id", "INVALID_FIELD"),
    ({"username": "u", "email_verified": "yes"}, "email_verified", "INVALID_FIELD"),
    ({"username": "u", "created_at": "yesterday"}, "created_at", "INVALID_FIELD"),
    ({"username": "u", "colour": "red"}, "colour", "INVALID_FIELD"),
    (
        {"username": "u", "password": PASSWORD, "password_hash": "$1$a$"},
        "password_hash",
        "INVALID_FIELD",
    ),
    ({"username": "u", "password_hash": "$0$nope"}, "password_hash", "UNSUPPORTED_HASH"),
]


@pytest.mark.parametrize(("line", "field", "reason"), BAD_LINES)
async def test_each_kind_of_bad_line_is_reported_and_nothing_is_imported(
    line: bytes | dict[str, object],
    field: str | None,
    reason: str,
    services: Services,
    project: ProjectKeys,
    db: TestDB,
) -> None:
    report = await run_import(services, jsonl(good(1), line, good(3)))
    assert problems(report) == [(2, field, reason)]
    assert report.invalid[0].text().startswith(f"line 2: {field + ': ' if field else ''}{reason}: ")
    assert (report.imported, report.written) == (0, False)
    assert user_count(db) == 0


async def test_skip_invalid_imports_the_good_lines_and_reports_the_rest(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    data = jsonl(good(1), b"nope", good(3), {"username": "x", "email": "bad"}, b"", good(6))
    report = await run_import(services, data, skip_invalid=True)
    assert problems(report) == [(2, None, "INVALID_FIELD"), (4, "email", "INVALID_EMAIL")]
    assert (report.imported, report.skipped) == (3, 0)
    assert user_count(db) == 3


async def test_duplicates_inside_the_file_are_bad_lines(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    data = jsonl(
        {"username": "Ann", "email": "ann@example.com", "unique_id": UID},
        {"username": "ANN"},
        {"username": "other", "email": "Ann@Example.com"},
        {"username": "third", "unique_id": UID},
        {"username": "fine"},
    )
    report = await run_import(services, data)
    assert problems(report) == [
        (2, "username", "USERNAME_TAKEN"),
        (3, "email", "EMAIL_TAKEN"),
        (4, "unique_id", "INVALID_FIELD"),
    ]
    assert user_count(db) == 0
    report = await run_import(services, data, skip_invalid=True)
    assert report.imported == 2
    assert stored(db, "Ann")["unique_id"] == UID


async def test_imported_users_start_at_version_1_with_an_import_audit_event(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    line = {
        "unique_id": UID,
        "username": "eve",
        "email": "Eve@Example.com",
        "email_verified": True,
        "first_name": "Eve",
        "last_name": "Adams",
        "phone_number": "+14155552671",
        "image_url": "https://example.com/eve.png",
        "data": {"plan": "gold", "n": [1, 2]},
        "created_at": "2021-05-06T07:08:09.123+02:00",
        "password_hash": FORMATS["bcrypt_2b"](PASSWORD),
    }
    assert (await run_import(services, jsonl(line))).imported == 1
    row = db.sql(
        "SELECT unique_id, email, email_verified, first_name, last_name, phone_number, "
        "image_url, data, created_at, version FROM users"
    )[0]
    assert row[:7] == (
        UID,
        "Eve@example.com",
        True if db.backend != "sqlite" else 1,
        "Eve",
        "Adams",
        "+14155552671",
        "https://example.com/eve.png",
    )
    assert json_column(row[7]) == {"plan": "gold", "n": [1, 2]}
    assert row[8] == 1620277689123 and row[9] == 1
    audit = db.sql("SELECT action, actor, fields FROM audit_events")
    assert [(a, b) for a, b, _ in audit] == [("import", "master")]
    assert "password" in json_column(audit[0][2])


async def test_conflict_skip_is_the_default_and_a_rerun_changes_nothing(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    data = jsonl(
        good(1, unique_id=UID), good(2), good(3, password_hash=FORMATS["md5_crypt"](PASSWORD))
    )
    first = await run_import(services, data)
    assert first.imported == 3
    before = db.sql(
        "SELECT unique_id, username, version, updated_at, password_hash FROM users ORDER BY pk"
    )
    second = await run_import(services, data)
    assert (second.imported, second.updated, second.skipped, second.invalid) == (0, 0, 3, [])
    assert (
        db.sql(
            "SELECT unique_id, username, version, updated_at, password_hash FROM users ORDER BY pk"
        )
        == before
    )
    assert len(db.sql("SELECT id FROM audit_events")) == 3


async def test_conflict_update_replaces_fields_and_a_new_hash_revokes_sessions(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key, "jane", PASSWORD, email="jane@example.com")
    new_hash = FORMATS["sha512_crypt"]("Another1pass")
    data = jsonl({"username": "jane", "first_name": "Jane", "data": {"a": 1}})
    report = await run_import(services, data, on_conflict="update")
    assert (report.updated, report.imported) == (1, 0)
    assert stored(db, "jane")["version"] == 2
    sessions = "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL"
    assert db.sql(sessions)[0][0] == 1  # no credential changed: sessions stay
    same = await run_import(services, data, on_conflict="update")
    assert (same.updated, same.skipped) == (0, 1)  # nothing differs: nothing written
    dry = await run_import(services, data, on_conflict="update", dry_run=True)
    assert (dry.updated, dry.skipped) == (0, 1)

    data = jsonl({"unique_id": account.unique_id, "username": "jane", "password_hash": new_hash})
    report = await run_import(services, data, on_conflict="update")
    assert report.updated == 1
    after = stored(db, "jane")
    assert (after["version"], after["hash"]) == (3, new_hash)
    assert db.sql(sessions)[0][0] == 0
    old = await sign_in(client, project.api_key, "jane", PASSWORD)
    assert old["data"]["signIn"]["errors"][0]["code"] == "INVALID_CREDENTIALS"
    new = await sign_in(client, project.api_key, "jane", "Another1pass")
    assert new["data"]["signIn"]["errors"] == []
    fields = [
        json_column(f) for (f,) in db.sql("SELECT fields FROM audit_events WHERE action = 'import'")
    ]
    assert fields == [["data", "first_name"], ["password"]]


async def test_conflict_update_refuses_a_line_matching_two_users(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key, "one", PASSWORD, email="one@example.com")
    await sign_up(client, project.api_key, "two", PASSWORD, email="two@example.com")
    data = jsonl({"username": "one", "email": "two@example.com"})
    report = await run_import(services, data, on_conflict="update")
    assert problems(report) == [(1, "email", "EMAIL_TAKEN")]


async def test_conflict_fail_makes_conflicting_lines_bad(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key, "jane", PASSWORD, email="jane@example.com")
    data = jsonl(
        good(1),
        {"username": "Jane"},
        {"username": "x", "email": "JANE@example.com"},
        {"username": "y", "unique_id": account.unique_id},
    )
    report = await run_import(services, data, on_conflict="fail")
    assert problems(report) == [
        (2, "username", "USERNAME_TAKEN"),
        (3, "email", "EMAIL_TAKEN"),
        (4, "unique_id", "INVALID_FIELD"),
    ]
    assert user_count(db) == 1


async def test_a_unique_id_of_another_endpoint_is_a_bad_line_in_every_mode(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    account = await sign_up(client, project.api_key, "jane", PASSWORD)
    from api.services import projects

    await projects.create_endpoint(services, project="acme", name="staff")
    for mode in ("skip", "update", "fail"):
        report = await run_import(
            services,
            jsonl({"username": "z", "unique_id": account.unique_id}),
            endpoint="staff",
            on_conflict=mode,
        )
        assert problems(report) == [(1, "unique_id", "INVALID_FIELD")]


async def test_dry_run_reports_and_writes_nothing(
    client: httpx.AsyncClient, services: Services, project: ProjectKeys, db: TestDB
) -> None:
    await sign_up(client, project.api_key, "jane", PASSWORD)
    data = jsonl(good(1), {"username": "jane", "first_name": "J"}, good(3, password=PASSWORD))
    report = await run_import(services, data, dry_run=True, on_conflict="update")
    assert (report.imported, report.updated, report.skipped, report.written) == (2, 1, 0, False)
    assert user_count(db) == 1
    assert stored(db, "jane")["version"] == 1


async def test_large_files_import_in_batches(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    data = jsonl(*(good(i, password_hash="$1$abcdefgh$") for i in range(1234)))
    report = await run_import(services, data)
    assert (report.imported, report.invalid) == (1234, [])
    assert db.sql("SELECT COUNT(*) FROM audit_events WHERE action = 'import'")[0][0] == 1234


async def test_a_byte_order_mark_and_crlf_line_ends_are_accepted(
    services: Services, project: ProjectKeys, db: TestDB
) -> None:
    data = b"\xef\xbb\xbf" + jsonl(good(1)).replace(b"\n", b"\r\n") + jsonl(good(2))
    report = await run_import(services, data)
    assert (report.imported, report.invalid) == (2, [])
