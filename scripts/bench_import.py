"""Benchmark of `amend users import` / `export` and of signing in with an imported hash.

Runs the real CLI as child processes against a fresh SQLite database in a temporary
directory and reports:

- import: pre-hashed lines per second (target >= 20,000) and the child's peak RSS
  (target < 200 MiB for 1,000,000 lines: `--lines 1000000`);
- export: lines per second (target >= 50,000);
- sign-in with an imported bcrypt hash: the first check costs one bcrypt verification plus
  one argon2id hash (production parameters), later ones one argon2id verification.

Usage: .venv/bin/python scripts/bench_import.py [--lines N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from passlib.hash import bcrypt

from api.config import Settings
from api.security.passwords import PasswordHasher

PASSWORD = "Moved1n!x"


def _env(directory: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env["AMEND_DATABASE_URL"] = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    env["AMEND_SECRET_KEY"] = "bench-secret-key-0123456789-abcdefghijklmnop"
    env["AMEND_LOG_LEVEL"] = "warning"
    return env


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float  # user + system time of the child: steadier than wall time on a busy machine


def _amend(directory: Path, *args: str) -> Run:
    """Run `amend ARGS` as a child process; its wall and CPU time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=directory,
        env=_env(directory),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall, cpu)


def _rate(lines: int, run: Run, startup: Run) -> dict[str, int]:
    """Lines per second, by wall and by CPU time, without the process start-up (interpreter,
    imports, migration check), which `startup` measured on an empty run."""
    wall = max(run.wall_s - startup.wall_s, 1e-9)
    cpu = max(run.cpu_s - startup.cpu_s, 1e-9)
    return {"per_s_wall": round(lines / wall), "per_s_cpu": round(lines / cpu)}


def write_lines(path: Path, count: int) -> None:
    """`count` users with emails, names, custom data and one (pre-made) bcrypt hash."""
    hashed = bcrypt.using(rounds=10).hash(PASSWORD)
    with path.open("w") as out:
        for i in range(count):
            doc = {
                "username": f"user{i}",
                "email": f"user{i}@example.com",
                "first_name": "Ada",
                "last_name": f"L{i}",
                "data": {"plan": "pro", "n": i},
                "created_at": "2024-01-02T03:04:05.678Z",
                "password_hash": hashed,
            }
            out.write(json.dumps(doc, separators=(",", ":")) + "\n")


async def signin_costs() -> dict[str, float]:
    """Milliseconds: bcrypt (cost 10) check with upgrade, then the upgraded check, and the
    two parts on their own, with the production argon2id parameters."""
    s = Settings(secret_key="k" * 32)
    hasher = PasswordHasher(
        memory_kib=s.argon2_memory_kib,
        time_cost=s.argon2_time_cost,
        parallelism=s.argon2_parallelism,
    )
    try:
        imported = bcrypt.using(rounds=10).hash(PASSWORD)
        rounds = 5
        first = upgraded = bcrypt_only = argon_hash = 0.0
        for _ in range(rounds):
            t = time.perf_counter()
            result = await hasher.verify(PASSWORD, imported)
            first += time.perf_counter() - t
            assert result.ok and result.new_hash is not None
            t = time.perf_counter()
            again = await hasher.verify(PASSWORD, result.new_hash)
            upgraded += time.perf_counter() - t
            assert again.ok and again.new_hash is None  # upgraded once
            t = time.perf_counter()
            bcrypt.verify(PASSWORD, imported)
            bcrypt_only += time.perf_counter() - t
            t = time.perf_counter()
            await hasher.hash(PASSWORD)
            argon_hash += time.perf_counter() - t
    finally:
        hasher.close()
    return {
        "first_signin_ms": first / rounds * 1000,
        "bcrypt_verify_ms": bcrypt_only / rounds * 1000,
        "argon2id_hash_ms": argon_hash / rounds * 1000,
        "later_signin_ms": upgraded / rounds * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="amend-bench-import-") as tmp:
        directory = Path(tmp)
        source = directory / "users.jsonl"
        write_lines(source, args.lines)
        (directory / "empty.jsonl").write_bytes(b"")
        _amend(directory, "project", "create", "bench")
        startup = _amend(directory, "users", "import", "--project", "bench", "empty.jsonl")
        imported = _amend(directory, "users", "import", "--project", "bench", str(source))
        rss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = directory / "out.jsonl"
        exported = _amend(directory, "users", "export", "--project", "bench", "--output", str(out))
        count = sum(1 for _ in out.open("rb"))
        assert count == args.lines, count
    results: dict[str, float | int] = {
        "lines": args.lines,
        "startup_s": round(startup.wall_s, 2),
        **{f"import_{k}": v for k, v in _rate(args.lines, imported, startup).items()},
        "import_peak_rss_mib": round(rss_kib / 1024, 1),
        **{f"export_{k}": v for k, v in _rate(args.lines, exported, startup).items()},
        "load_average_1m": round(os.getloadavg()[0], 1),
        **{k: round(v, 1) for k, v in asyncio.run(signin_costs()).items()},
    }
    if args.json:
        print(json.dumps(results))
        return 0
    for key, value in results.items():
        print(f"{key:24} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
