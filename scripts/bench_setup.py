"""The database a benchmark runs on: a fresh SQLite file or a throwaway PostgreSQL cluster, a
project created through Amend's own CLI (which migrates it), and the seeded users."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench_postgres import cluster, seed_postgres
from bench_seed import Seeded, create_project, seed
from bench_system import log

from api.config import Settings


@dataclass
class Setup:
    env: dict[str, str]  # Amend's environment
    baseline: str  # the baseline's module under scripts/
    baseline_env: dict[str, str]
    settings: Settings
    seeded: Seeded
    description: str
    database_ticks: Callable[[], int | None] | None = None

    @classmethod
    def make(cls, args: argparse.Namespace, workdir: Path, stack: contextlib.ExitStack) -> Setup:
        secret = secrets.token_urlsafe(48)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
        env.update(AMEND_SECRET_KEY=secret, AMEND_LOG_LEVEL="warning")
        bench_env = {**env, "BENCH_SECRET": secret}
        if args.database == "sqlite":
            db_path = workdir / "amend.db"
            env["AMEND_DATABASE_URL"] = f"sqlite+aiosqlite:///{db_path}"
            bench_env["BENCH_DB"] = str(db_path)
            baseline, description = "bench_baseline", "SQLite (WAL), fresh temporary file"
        else:
            log("starting a throwaway PostgreSQL cluster")
            pg = stack.enter_context(cluster())
            env["AMEND_DATABASE_URL"] = pg.url
            # Both servers reach PostgreSQL directly and the baseline keeps prepared
            # statements: so does Amend, unless asked to run as it must behind PgBouncer.
            env["AMEND_DB_SERVER_PREPARED"] = "false" if args.pooler_statements else "true"
            bench_env["BENCH_DSN"] = pg.dsn
            baseline = "bench_baseline_pg"
            description = "PostgreSQL (throwaway cluster, fsync off), fresh, " + (
                "Amend with unnamed statements and reads in transactions (as behind PgBouncer)"
                if args.pooler_statements
                else "Amend with named prepared statements (AMEND_DB_SERVER_PREPARED=true)"
            )
        # The same settings the server will read (production defaults apart from these).
        settings = Settings.from_env(env, env_file=None)
        bench_env["BENCH_ISSUER"] = settings.issuer
        bench_env["BENCH_POOL"] = str(settings.db_pool_size)
        log(f"project and {args.users} users in {workdir}")
        project = create_project(workdir, env)
        if args.database == "sqlite":
            seeded = seed(workdir / "amend.db", project, settings, args.users)
            ticks = None
        else:
            seeded = seed_postgres(pg, project, settings, args.users)
            ticks = pg.ticks

        log(f"seeded in {seeded.seconds:.1f} s")
        return cls(env, baseline, bench_env, settings, seeded, description, ticks)
