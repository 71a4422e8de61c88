"""`amend users import` / `export` as real processes, and the round trip between backends.

The round trip runs between the backend under test and a second, SQLite, database: on the
PostgreSQL run that is PostgreSQL -> SQLite and SQLite -> PostgreSQL.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.services import projects
from api.services.container import Services
from api.store import migrate
from tests.conftest import CHEAP_ARGON2, SECRET, ProjectKeys, make_settings
from tests.db import TestDB
from tests.gql import sign_in
from tests.transfer.helpers import FORMATS, PASSWORD, jsonl, user_count

ROOT = Path(__file__).resolve().parent.parent.parent


def amend(
    db: TestDB, cwd: Path, *args: str, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2, AMEND_DATABASE_URL=db.url, AMEND_SECRET_KEY=SECRET)
    return subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        timeout=120,
    )


def lines_of(formats: list[str]) -> bytes:
    return jsonl(
        *(
            {
                "username": f"user-{name}",
                "email": f"{name.replace('_', '-')}@example.com",
                "password_hash": FORMATS[name](PASSWORD),
                "data": {"format": name},
                "created_at": f"2020-01-0{1 + i % 9}T00:00:00.{i:03d}Z",
            }
            for i, name in enumerate(formats)
        )
    )


async def test_import_from_stdin_prints_a_json_summary(
    tmp_path: Path, project: ProjectKeys, db: TestDB
) -> None:
    data = lines_of(["bcrypt_2b", "phpass_P"]) + b'{"username": "bad", "email": "x"}\n'
    refused = amend(db, tmp_path, "users", "import", "--project", "acme", "-", "--json", stdin=data)
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        "imported": 0,
        "updated": 0,
        "skipped": 0,
        "invalid": [
            {
                "line": 3,
                "field": "email",
                "reason": "INVALID_EMAIL",
                "message": json.loads(refused.stdout)["invalid"][0]["message"],
            }
        ],
    }
    done = amend(
        db, tmp_path, "users", "import", "--project", project.id, "-", "--skip-invalid", stdin=data
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().strip() == ("imported 2, updated 0, skipped 0, invalid lines 1")
    assert b"line 3: email: INVALID_EMAIL: " in done.stderr
    assert b"\r" not in done.stderr  # no progress bar without a terminal
    assert user_count(db) == 2


async def test_dry_run_from_a_file_writes_nothing(
    tmp_path: Path, project: ProjectKeys, db: TestDB
) -> None:
    (tmp_path / "u.jsonl").write_bytes(lines_of(["md5_crypt", "ssha"]))
    result = amend(db, tmp_path, "users", "import", "--project", "acme", "u.jsonl", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().startswith("dry run, nothing written: would import 2,")
    assert user_count(db) == 0


async def test_export_writes_a_private_file_in_the_import_format(
    tmp_path: Path, project: ProjectKeys, db: TestDB
) -> None:
    amend(
        db,
        tmp_path,
        "users",
        "import",
        "--project",
        "acme",
        "-",
        stdin=lines_of(["bcrypt_2y", "scrypt"]),
    )
    out = tmp_path / "export.jsonl"
    out.write_text("old")
    out.chmod(0o644)
    result = amend(db, tmp_path, "users", "export", "--project", "acme", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [d["username"] for d in docs] == ["user-bcrypt_2y", "user-scrypt"]  # newest last
    assert docs[0]["password_hash"].startswith("$2y$")
    assert docs[0]["created_at"] == "2020-01-01T00:00:00.000+00:00"
    assert set(docs[0]) == {
        "unique_id",
        "username",
        "email",
        "email_verified",
        "data",
        "created_at",
        "password_hash",
    }
    to_stdout = amend(db, tmp_path, "users", "export", "--project", "acme")
    assert to_stdout.stdout == out.read_bytes()


@pytest.fixture
async def sqlite_instance(tmp_path: Path) -> AsyncIterator[tuple[Services, ProjectKeys]]:
    """A second instance on its own SQLite database, with a project `acme`."""
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    services = Services.build(settings)
    await migrate.upgrade(services.db)
    created = await projects.create_project(services, name="acme")
    yield services, ProjectKeys(created.project.id, created.api_key, created.master_key)
    await services.close()


async def _export(services: Services) -> bytes:
    from api.services.user_export import export_users

    return b"".join(
        [chunk async for chunk in export_users(services, project="acme", endpoint="users")]
    )


async def _round_trip(source: Services, target: Services, target_key: str) -> None:
    from tests.transfer.helpers import run_import

    exported = await _export(source)
    report = await run_import(target, exported)
    assert (report.imported, report.invalid) == (len(FORMATS) + 1, [])
    assert await _export(target) == exported  # same ids, fields, data, hashes, order
    app = create_app(target.settings, services=target)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for name in FORMATS:
            body = await sign_in(client, target_key, f"user-{name}", PASSWORD)
            assert body["data"]["signIn"]["errors"] == [], (name, body)
        body = await sign_in(client, target_key, "plain", PASSWORD)
        assert body["data"]["signIn"]["errors"] == []


def _users() -> bytes:
    return lines_of(sorted(FORMATS)) + jsonl(
        {
            "username": "plain",
            "password": PASSWORD,
            "first_name": "Pl",
            "last_name": "Ain",
            "phone_number": "+33612345678",
            "image_url": "https://example.com/p.png",
            "email_verified": True,
            "data": {"nested": {"deep": [1, 2.5, None, "é"]}},
        }
    )


async def test_round_trip_from_the_backend_under_test_to_another_instance(
    services: Services, project: ProjectKeys, sqlite_instance: tuple[Services, ProjectKeys]
) -> None:
    from tests.transfer.helpers import run_import

    await run_import(services, _users())
    target, keys = sqlite_instance
    await _round_trip(services, target, keys.api_key)


async def test_round_trip_from_another_instance_to_the_backend_under_test(
    services: Services, project: ProjectKeys, sqlite_instance: tuple[Services, ProjectKeys]
) -> None:
    from tests.transfer.helpers import run_import

    source, _ = sqlite_instance
    await run_import(source, _users())
    await _round_trip(source, services, project.api_key)


async def test_a_progress_bar_runs_on_stderr_when_it_is_a_terminal(
    tmp_path: Path, project: ProjectKeys, db: TestDB
) -> None:
    import fcntl
    import pty
    import struct
    import termios

    (tmp_path / "u.jsonl").write_bytes(lines_of(["md5_crypt", "ssha"]))
    primary, secondary = pty.openpty()
    # A terminal of 80 columns (a new pseudo-terminal has none, and a bar then has no room).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2, AMEND_DATABASE_URL=db.url, AMEND_SECRET_KEY=SECRET)
    # The test is async only for its fixtures; nothing else runs on its loop.
    with subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "api", "users", "import", "--project", "acme", "u.jsonl"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=secondary,
    ) as proc:
        os.close(secondary)
        terminal = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        out, _ = proc.communicate(timeout=60)
    os.close(primary)
    assert proc.returncode == 0
    assert b"checking" in terminal and b"writing" in terminal
    assert out.decode().startswith("imported 2,")
