"""Benchmark Amend's hot paths with wrk, against a minimal baseline on the same database.

    ./scripts/bench                    # 10 s per target (run ./scripts/test or ./scripts/dev once)
    ./scripts/bench --quick            # 3 s per target
    ./scripts/bench --duration 5 --users 2000 --json /tmp/bench.json
    ./scripts/bench --database postgres [--workers 2] [--pooler-statements]

With `--database postgres` both servers use a throwaway cluster (`scripts/bench_postgres.py`);
Amend keeps named prepared statements (`AMEND_DB_SERVER_PREPARED=true`) as the asyncpg
baseline does, unless `--pooler-statements` runs it as it must run behind PgBouncer.

What it does:

1. installs `wrk` from Debian if it is missing;
2. makes a temporary directory with a fresh SQLite database (WAL), creates a project with
   `python -m api project create bench --json`, and seeds `--users` users directly with
   sqlite3 in one transaction (one password hashed once with the production argon2
   parameters, the same hash for every user), plus one session per user whose token is
   issued with `api.security.tokens.TokenService` and the server's `AMEND_SECRET_KEY`;
3. measures argon2 hashes/s of one thread on core 0, in process, with the production
   parameters (what bounds `signIn`);
4. starts `amend serve` (one worker, production argon2, `AMEND_LOG_LEVEL=warning`) and the
   baseline `scripts/bench_baseline.py` (uvicorn, one worker), both pinned to core 0, and
   drives each with `wrk` pinned to core 1: 32 connections, one Lua script per target that
   rotates through every seeded user's token;
5. sends GraphQL `me` to Amend and `GET /me` to the baseline once per seeded user (what the
   servers remember per session, such as Amend's verified-token cache, then holds what a few
   seconds of traffic would leave, whichever target runs first), then, without `--quick`,
   1 s of each target;
6. runs, interleaved, the baseline doing the same work then the target: GraphQL `updateMe`
   (baseline `PATCH /me?plain=1`: the update and its audit row), REST `PATCH /me` (baseline
   `PATCH /me`: the same plus REST's session envelope), REST `PUT /1/ce/users?…&strategy=merge`
   (baseline `PATCH /me?plain=1`), GraphQL `me` (baseline `GET /me`), GraphQL `signIn` (real
   passwords; baseline `PATCH /me?plain=1`, for scale only); then `me` again while 2
   connections change passwords through GraphQL `updateUser` with the master key (each
   change verifies and hashes). The two argon2-bound runs last at least 5 s: with 32 sign-ins
   queued behind a 2-thread hash pool on one core, the first answers take more than a second;
7. prints a Markdown table (requests/s, p50, p99, non-2xx, GraphQL/app errors, socket
   errors, ratio to the baseline run just before) and writes a JSON document (`--json`,
   default `bench-results.json` in the working directory); the server's peak RSS is read
   from /proc/<pid>/status (VmHWM).

On a shared machine requests/s move with whatever else runs on core 0; the server's CPU time
per request (from /proc/<pid>/stat, beside the share of a core it got) moves much less, so
the table shows both, and wrk's own CPU so a saturated load generator is visible.

Every process it starts is ended on exit, on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_report import build_document, markdown
from bench_runs import Runner, Server, preflight, start_server, visit_every_session
from bench_seed import argon2_rate
from bench_setup import Setup
from bench_system import (
    MIN_HASHING_RUN,
    STOP_SIGNALS,
    Interrupted,
    Processes,
    _on_signal,
    ensure_wrk,
    loadavg,
    log,
    machine,
    pin,
    proc_status,
    wait_idle,
)
from bench_targets import BASELINE_OF, Target, make_targets

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--target",
        choices=sorted(TARGETS),
        default="http",
        help="http: the hot paths (default); import: the import/export benchmark, which takes "
        "its own options (scripts/bench --target import --help)",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pooler-statements",
        action="store_true",
        help="PostgreSQL: run Amend as behind PgBouncer in transaction mode (unnamed statements, "
        "reads in transactions) instead of with AMEND_DB_SERVER_PREPARED=true",
    )
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    parser.add_argument("--duration", type=int, help="seconds per run (default 10; --quick: 3)")
    parser.add_argument("--quick", action="store_true", help="3 s per run, no warm-up runs")
    parser.add_argument("--users", type=int, default=10_000, help="users to seed (default 10000)")
    parser.add_argument("--json", default="bench-results.json", help="where to write results")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args, rest = parser.parse_known_args(argv)
    if args.target != "http":
        return args, rest
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.duration is None:
        args.duration = 3 if args.quick else 10
    if args.duration < 1:
        parser.error("--duration must be at least 1")
    if args.users < 10:
        parser.error("--users must be at least 10")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args, rest


def run_module(name: str) -> Callable[[list[str]], int]:
    """A benchmark in a module of its own (`main(argv) -> int`), imported only when asked for."""

    def run(argv: list[str]) -> int:
        try:
            module: Any = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            raise SystemExit(f"bench: scripts/{name}.py is not in this tree") from None
        result: int = module.main(argv)
        return result

    return run


# --target: each names a benchmark; `http` is this module's own.
TARGETS: dict[str, Callable[[list[str]], int] | None] = {
    "http": None,
    "import": run_module("bench_import"),
}


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    # SIGINT too, explicitly: a shell starting this in the background ignores it otherwise.
    previous = {s: signal.signal(s, _on_signal) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument("--target", choices=sorted(TARGETS), default="http")
    chosen, rest = target.parse_known_args(argv)
    other = TARGETS[chosen.target]
    if other is not None:
        return other(rest)  # every other argument is that benchmark's
    args, _ = parse_args(argv)
    json_path = Path(args.json).resolve()
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="amend-bench-"))
    try:
        with signals_raise(), contextlib.ExitStack() as stack:
            return _bench(args, procs, workdir, json_path, stack)
    except (KeyboardInterrupt, Interrupted):
        log("interrupted: stopping everything")
        return 130
    finally:
        # A second Ctrl-C must not leave servers behind half-way through stopping them.
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        procs.stop_all()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _bench(
    args: argparse.Namespace,
    procs: Processes,
    workdir: Path,
    json_path: Path,
    stack: contextlib.ExitStack,
) -> int:
    wrk = ensure_wrk()
    info = machine()
    cores = sorted(os.sched_getaffinity(0))
    server_core, wrk_core = (cores[0], cores[1]) if len(cores) >= 2 else (None, None)
    if server_core is None:
        log("fewer than 2 cores: nothing is pinned; numbers mix server and load generator")
    if args.workers > 1:
        server_core = None  # several workers get every core
    load = info["loadavg_at_start"]
    if load and load[0] > 0.5 * len(cores):
        log(f"the machine is busy (load average {load[0]}): expect noisy numbers")
    started = time.monotonic()
    setup = Setup.make(args, workdir, stack)
    settings = setup.settings
    argon2 = None
    if args.database == "sqlite":
        argon2 = argon2_rate(settings, server_core, 1.0 if args.quick else 3.0)
        log(f"argon2: {argon2['hash_per_s']} hashes/s, {argon2['verify_per_s']} verifications/s")

    seeded = setup.seeded
    targets = make_targets(seeded, max(2, args.users // 100))
    for target in targets.values():
        target.write(workdir)
    serve = ["--host", "127.0.0.1", "--port", "@PORT@", "--workers", str(args.workers)]
    amend_cmd = [*pin(server_core), sys.executable, "-m", "api", "serve", *serve]
    baseline_cmd = [
        *pin(server_core), sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "scripts"),
        f"{setup.baseline}:create_app", "--factory", *serve, "--no-access-log",
        "--log-level", "warning",
        # As `amend serve` runs uvicorn: no proxy-header rewriting, no Server header.
        "--no-proxy-headers", "--no-server-header",
    ]  # fmt: skip
    # For --keep: what a person needs to start the same server on the kept database.
    (workdir / "bench.env").write_text(
        "".join(f"export {k}={v}\n" for k, v in setup.env.items() if k.startswith("AMEND_"))
        + f"export BENCH_API_KEY={seeded.api_key}\n"
        + f"export BENCH_MASTER_KEY={seeded.master_key}\n"
    )
    servers = {
        "amend": start_server(procs, "amend", amend_cmd, setup.env, workdir, workdir / "a.log"),
        "baseline": start_server(
            procs, "baseline", baseline_cmd, setup.baseline_env, workdir, workdir / "b.log"
        ),
    }
    log(f"amend on {servers['amend'].url}, baseline on {servers['baseline'].url}")
    for target in targets.values():
        preflight(servers[target.server], target)

    runner = Runner(procs, wrk, servers, wrk_core)
    runner.database_ticks = setup.database_ticks
    measure(args, runner, servers, targets)

    hwm = {name: proc_status(s.proc.pid, "VmHWM") for name, s in servers.items()}
    for server in servers.values():
        if server.proc.poll() is not None:
            raise SystemExit(f"bench: the {server.name} server died during the run")
    doc = build_document(args, info, (server_core, wrk_core), seeded, argon2, runner, servers, hwm)
    doc["config"]["database"] = setup.description
    doc["machine"]["loadavg_at_end"] = loadavg()
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    print(markdown(doc))
    log(f"results written to {json_path}")
    return 0


def measure(
    args: argparse.Namespace,
    runner: Runner,
    servers: dict[str, Server],
    targets: dict[str, Target],
) -> None:
    """Every run, each Amend target right after the baseline doing its work. On PostgreSQL
    the three targets with a floor to reach; on SQLite also the argon2-bound ones."""
    sqlite = args.database == "sqlite"
    measured = ("updateMe", "patch_me", "put_ce", "me", "signIn") if sqlite else HOT_PATHS
    seconds = args.duration
    for name in ("me", "baseline_read"):
        took = visit_every_session(servers[targets[name].server], targets[name])
        log(f"visited every seeded session once through {name} in {took:.1f} s")
    if not args.quick:
        log("warm-up: 1 s per target")
        for name in sorted({BASELINE_OF[n] for n in measured}) + [
            n for n in measured if n != "signIn"
        ]:
            runner.run(targets[name], 1, record=False)
    for name in measured:
        runner.run(targets[BASELINE_OF[name]], seconds)
        # argon2-bound runs need a few seconds before the first of 32 queued sign-ins ends
        runner.run(targets[name], max(seconds, MIN_HASHING_RUN) if name == "signIn" else seconds)
    if sqlite:
        loaded = max(seconds, MIN_HASHING_RUN)
        runner.run_loaded(targets["me"], targets["password_changes"], loaded)
    wait_idle(runner.pids())


HOT_PATHS = ("updateMe", "patch_me", "me")


if __name__ == "__main__":
    sys.exit(main())
