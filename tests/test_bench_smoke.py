"""`scripts/bench` runs end to end on a tiny data set and reports every target.

Not a performance test: it checks, on SQLite and on a throwaway PostgreSQL cluster, that the
benchmark still works (wrk installed or installable, seeding matches the schema, every prepared
request succeeds, cleanup happens), so the numbers it prints can be trusted when someone runs
it for real. It must fail, not skip, when wrk
cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.db import BACKEND

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("updateMe", "patch_me", "put_ce", "me", "signIn", "me_loaded", "password_changes")


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench"), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    return result


def run_bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "bench.json"
    result = _bench(tmp_path, "--quick", "--duration", "1", *args, "--json", str(out))
    return json.loads(out.read_text()), result.stdout


def bench_quick_run_reports_every_target(tmp_path: Path) -> None:
    doc, stdout = run_bench(tmp_path, "--users", "200")
    for name in TARGETS:
        target = doc["targets"][name]
        assert target["rps"] > 0, (name, target)
        assert target["non2xx"] == 0, (name, target)
        assert target["app_errors"] == 0, (name, target)
    baselines = doc["targets"]["baseline_runs"]["runs"]
    assert baselines and all(run["rps"] > 0 for run in baselines)
    assert doc["targets"]["me"]["ratio_to_baseline"] > 0
    assert doc["argon2"]["hash_per_s"] > 0
    assert doc["server"]["peak_rss_kib"] > 0
    assert "| GraphQL updateMe |" in stdout


def bench_postgres_run_starts_a_cluster_and_reports_the_hot_paths(tmp_path: Path) -> None:
    doc, stdout = run_bench(tmp_path, "--database", "postgres", "--users", "50")
    for name in ("updateMe", "patch_me", "me"):
        target = doc["targets"][name]
        assert target["rps"] > 0, (name, target)
        assert target["non2xx"] == 0 and target["app_errors"] == 0, (name, target)
        assert target["ratio_to_baseline"] > 0, (name, target)
        # PostgreSQL's backends are counted: the server did spend CPU on each request.
        assert target["server_cpu_ms_per_request"] > 0, (name, target)
    assert doc["targets"]["patch_me"]["baseline"] == "baseline_rest"
    assert doc["config"]["database"].startswith("PostgreSQL")
    assert "| REST PATCH /me |" in stdout


def bench_import_target_reports_rates_and_signin_costs(tmp_path: Path) -> None:
    result = _bench(tmp_path, "--target", "import", "--lines", "300", "--json")
    doc = json.loads(result.stdout.strip().splitlines()[-1])
    assert doc["lines"] == 300
    assert doc["import_per_s_wall"] > 0 and doc["export_per_s_wall"] > 0
    assert doc["import_peak_rss_mib"] > 0
    assert doc["first_signin_ms"] > doc["later_signin_ms"] > 0


# The benchmark brings its own database (a SQLite file, a throwaway PostgreSQL cluster): run
# both in the SQLite pass only.
if BACKEND == "sqlite":
    test_bench_quick_run_reports_every_target = bench_quick_run_reports_every_target
    test_bench_postgres_run_starts_a_cluster_and_reports_the_hot_paths = (
        bench_postgres_run_starts_a_cluster_and_reports_the_hot_paths
    )
    test_bench_import_target_reports_rates_and_signin_costs = (
        bench_import_target_reports_rates_and_signin_costs
    )
