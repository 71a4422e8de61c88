"""`scripts/bench --database postgres`: a throwaway cluster, its seeded users, its CPU.

The cluster comes from `scripts/pgcluster.py` when that module is there (the one the tests'
`with-postgres` uses); otherwise from the same steps here, with `scripts/with-postgres`'s
server-finding logic. PostgreSQL shares the machine's cores with the server under test, so the
CPU its postmaster and backends burn during a run is counted as the server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import importlib
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
from bench_seed import Seeded, password_hash, session_rows, user_rows
from bench_system import cpu_ticks

from api.config import Settings

HERE = Path(__file__).resolve().parent
# The same settings as the tests' clusters: durability off (both servers under test get it).
OPTIONS = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=400 -c shared_buffers=64MB"
)


@dataclass
class Cluster:
    port: int
    data: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _with_postgres() -> ModuleType:
    """`scripts/with-postgres` as a module (its name has a dash and no suffix)."""
    loader = importlib.machinery.SourceFileLoader("with_postgres", str(HERE / "with-postgres"))
    spec = importlib.util.spec_from_loader("with_postgres", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@contextlib.contextmanager
def cluster() -> Iterator[Cluster]:
    if importlib.util.find_spec("pgcluster") is not None:
        pgcluster: Any = importlib.import_module("pgcluster")
        with pgcluster.cluster() as pg:
            yield Cluster(pg.port, pg.data)
        return
    helpers: Any = _with_postgres()
    bindir = helpers.ensure_bin()
    base = Path(tempfile.mkdtemp(prefix="amend-bench-pg-"))
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(sock, "postgres", "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = helpers.free_port()
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    try:
        subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        options = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 {OPTIONS}"
        subprocess.run(
            [*pg_ctl, "-l", str(base / "log"), "-o", options, "-w", "-t", "60", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield Cluster(port, data)
    finally:
        subprocess.run(
            [*pg_ctl, "-m", "immediate", "-w", "stop"], check=False, stdout=subprocess.DEVNULL
        )
        shutil.rmtree(base, ignore_errors=True)


def postgres_ticks(data: Path) -> int | None:
    """CPU ticks (user + system) of the postmaster and every backend it forked."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    total = cpu_ticks(postmaster) or 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total


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
