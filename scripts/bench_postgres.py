"""`scripts/bench --database postgres`: a throwaway cluster, its seeded users, its CPU.

The cluster is the tests' (`scripts/pgcluster.py`). PostgreSQL shares the machine's cores
with the server under test, so the CPU its postmaster and backends burn during a run is
counted as the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pgcluster
from bench_seed import Seeded, password_hash, session_rows, user_rows
from bench_system import cpu_ticks

from api.config import Settings


@dataclass
class Cluster:
    pg: pgcluster.Cluster

    @property
    def url(self) -> str:
        return self.pg.url

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.pg.port}/postgres"

    def ticks(self) -> int | None:
        """CPU ticks (user + system) of the postmaster and every backend it forked."""
        try:
            pids = self.pg.pids()
        except (OSError, ValueError, IndexError):
            return None
        return sum(cpu_ticks(pid) or 0 for pid in pids)


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    """The tests' throwaway cluster (`scripts/pgcluster.py`): durability off, for both servers
    under test alike."""
    with pgcluster.cluster() as pg:
        yield Cluster(pg)


def seed_postgres(
    cluster: Cluster, project: dict[str, Any], settings: Settings, n_users: int
) -> Seeded:
    """Insert `n_users` users and one live session each, in one transaction, with asyncpg."""
    started = time.monotonic()
    hashed = password_hash(settings)
    now = int(time.time() * 1000)

    async def insert() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(cluster.dsn)
        try:
            endpoint_id = await conn.fetchval(
                "SELECT id FROM endpoints WHERE project_id = $1 AND name = 'users'", project["id"]
            )
            users, rows = user_rows(endpoint_id, hashed, n_users, now)
            async with conn.transaction():
                await conn.executemany(
                    "INSERT INTO users (endpoint_id, unique_id, username, username_canonical,"
                    " email, email_canonical, password_hash, first_name, last_name,"
                    " two_factor_enabled, email_verified, phone_verified, data, version,"
                    " created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                    " false, false, false, '{}', 1, $10, $11)",
                    rows,
                )
                pks = dict(
                    await conn.fetch(
                        "SELECT unique_id, pk FROM users WHERE endpoint_id = $1", endpoint_id
                    )
                )
                await conn.executemany(
                    "INSERT INTO sessions (id, user_pk, created_at, expires_at, last_seen_at,"
                    " user_agent, ip) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    session_rows(users, pks, project["id"], settings, now),
                )
            await conn.execute("ANALYZE")
            return users
        finally:
            await conn.close()

    users = asyncio.run(insert())
    return Seeded(
        project_id=project["id"],
        api_key=project["api_key"],
        master_key=project["master_key"],
        users=users,
        seconds=time.monotonic() - started,
    )
