"""The benchmark's data: a project, seeded users with live sessions, argon2's speed."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_system import (
    PASSWORD,
)

from api.config import Settings
from api.core.ids import new_hex_id
from api.core.policy import canonical_username
from api.security.passwords import PasswordHasher
from api.security.tokens import TokenService

# --------------------------------------------------------------------------------------------
# database


@dataclass
class Seeded:
    project_id: str
    api_key: str
    master_key: str
    users: list[dict[str, Any]]  # unique_id, username, token
    seconds: float


def create_project(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "api", "project", "create", "bench", "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: project create failed:\n{out.stderr}")
    data: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return data


def password_hash(settings: Settings) -> str:
    """One password hashed once with the production parameters: every user gets this hash."""
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        threads=1,
    )
    try:
        return asyncio.run(hasher.hash(PASSWORD))
    finally:
        hasher.close()


def user_rows(
    endpoint_id: int, hashed: str, n_users: int, now: int
) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """The seeded users (unique_id, username) and their `users` rows, in INSERT order."""
    users = [{"unique_id": new_hex_id(), "username": f"bench{i:05d}"} for i in range(n_users)]
    rows = []
    for u in users:
        email = f"{u['username']}@example.com"
        rows.append(
            (
                endpoint_id,
                u["unique_id"],
                u["username"],
                canonical_username(u["username"]),
                email,
                email,
                hashed,
                "Bench",
                "User",
                now,
                now,
            )
        )
    return users, rows


def session_rows(
    users: list[dict[str, Any]],
    pks: dict[str, int],
    project_id: str,
    settings: Settings,
    now: int,
) -> list[tuple[Any, ...]]:
    """One live session per user, its `sessions` row; each user gets its session's token."""
    tokens = TokenService(settings.secret_key, issuer=settings.issuer)
    expires = now + settings.token_ttl_seconds * 1000
    rows = []
    for u in users:
        session_hex = new_hex_id()
        rows.append((session_hex, pks[u["unique_id"]], now, expires, now, "wrk", "127.0.0.1"))
        u["token"] = tokens.issue(
            project_id=project_id,
            unique_id=u["unique_id"],
            session_hex=session_hex,
            iat=now // 1000,
            exp=expires // 1000,
        )
    return rows


def seed(db_path: Path, project: dict[str, Any], settings: Settings, n_users: int) -> Seeded:
    """Insert `n_users` users and one live session each, in one transaction."""
    started = time.monotonic()
    hashed = password_hash(settings)
    now = int(time.time() * 1000)
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA foreign_keys=ON")
        (endpoint_id,) = conn.execute(
            "SELECT id FROM endpoints WHERE project_id = ? AND name = 'users'", (project["id"],)
        ).fetchone()
        users, rows = user_rows(endpoint_id, hashed, n_users, now)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO users (endpoint_id, unique_id, username, username_canonical, email,"
            " email_canonical, password_hash, first_name, last_name, two_factor_enabled,"
            " email_verified, phone_verified, data, version, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, 0, '{}', 1, ?, ?)",
            rows,
        )
        pks = dict(
            conn.execute("SELECT unique_id, pk FROM users WHERE endpoint_id = ?", (endpoint_id,))
        )
        conn.executemany(
            "INSERT INTO sessions (id, user_pk, created_at, expires_at, last_seen_at,"
            " user_agent, ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
            session_rows(users, pks, project["id"], settings, now),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return Seeded(
        project_id=project["id"],
        api_key=project["api_key"],
        master_key=project["master_key"],
        users=users,
        seconds=time.monotonic() - started,
    )


def argon2_rate(settings: Settings, core: int | None, seconds: float) -> dict[str, Any]:
    """Hashes/s and verifications/s of one thread, production parameters, in this process,
    through Amend's own `PasswordHasher` (a one-thread pool, the thread pinned to `core`)."""
    saved = os.sched_getaffinity(0)
    if core is not None:
        os.sched_setaffinity(0, {core})  # inherited by the pool thread created below
    hasher = PasswordHasher(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        threads=1,
    )

    async def measure() -> dict[str, Any]:
        stored = await hasher.hash(PASSWORD)  # also warms the pool thread
        out: dict[str, Any] = {}
        for name, op in (
            ("hash", lambda: hasher.hash(PASSWORD)),
            ("verify", lambda: hasher.verify(PASSWORD, stored)),
        ):
            count, start, cpu_start = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - start < seconds or count < 3:
                await op()
                count += 1
            elapsed = time.perf_counter() - start
            # This process does nothing else meanwhile: its CPU time is the hashing thread's,
            # which a busy machine does not inflate the way it inflates wall-clock time.
            cpu = time.process_time() - cpu_start
            out[f"{name}_per_s"] = round(count / elapsed, 2)
            out[f"{name}_ms"] = round(1000 * elapsed / count, 2)
            out[f"{name}_cpu_ms"] = round(1000 * cpu / count, 2)
            out[f"{name}_per_cpu_s"] = round(count / cpu, 2) if cpu > 0 else None
        return out

    try:
        result = asyncio.run(measure())
    finally:
        hasher.close()
        os.sched_setaffinity(0, saved)
    result.update(
        memory_kib=settings.argon2_memory_kib,
        time_cost=settings.argon2_time_cost,
        parallelism=settings.argon2_parallelism,
        core=core,
    )
    return result
