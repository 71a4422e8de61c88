"""`scripts/bench` runs end to end on a tiny data set and reports every target.

Not a performance test: it checks that the benchmark still works (wrk installed or installable,
seeding matches the schema, every prepared request succeeds, cleanup happens), so the numbers
it prints can be trusted when someone runs it for real. It must fail, not skip, when wrk
cannot be installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.db import BACKEND

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("updateMe", "patch_me", "put_ce", "me", "signIn", "me_loaded", "password_changes")


def bench_quick_run_reports_every_target(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench"),
            "--quick",
            "--duration",
            "1",
            "--users",
            "200",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-4000:] + result.stdout[-2000:]
    doc = json.loads(out.read_text())
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
    assert "| GraphQL updateMe |" in result.stdout


# The benchmark brings its own SQLite database: run it in the SQLite pass only.
if BACKEND == "sqlite":
    test_bench_quick_run_reports_every_target = bench_quick_run_reports_every_target
