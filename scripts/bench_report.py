"""The JSON document and the Markdown table of a run."""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import asdict
from typing import Any

from bench_runs import Result, Runner, Server
from bench_seed import Seeded
from bench_system import (
    CHANGER_CONNECTIONS,
    CONNECTIONS,
    MIN_HASHING_RUN,
)

# --------------------------------------------------------------------------------------------
# report


def ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(doc: dict[str, Any]) -> str:
    lines = []
    m = doc["machine"]
    lines.append(
        f"Amend benchmark — {m['cpu_model']}, nproc {m['nproc']}, Python {m['python']}; "
        f"{doc['config']['database']}, {doc['config']['workers']} worker(s); "
        f"{doc['config']['users']} users, {doc['config']['connections']} connections, "
        f"{doc['config']['duration_s']} s per run (signIn and the loaded run at least "
        f"{MIN_HASHING_RUN} s); server pinned to core "
        f"{doc['config']['server_core']}, wrk to core {doc['config']['wrk_core']}."
    )
    lines.append("")
    lines.append(
        "| target | req/s | p50 ms | p99 ms | non-2xx | app errors | socket errors "
        "| server core % | server CPU ms/req | wrk core % | baseline req/s | x baseline "
        "| CPU/req x baseline |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in doc["table"]:
        lines.append(
            f"| {row['label']} | {row['rps']:.1f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['non2xx']} | {row['app_errors']} | {row['socket_errors']} "
            f"| {fmt(row.get('server_core_percent'), 0)} "
            f"| {fmt(row.get('server_cpu_ms_per_request'), 2)} "
            f"| {fmt(row.get('wrk_core_percent'), 0)} "
            f"| {fmt(row.get('baseline_rps'))} | {fmt(row.get('ratio_to_baseline'), 3)} "
            f"| {fmt(row.get('cpu_ratio_to_baseline'))} |"
        )
    lines.append("")
    if doc["argon2"] is not None and "signIn" in doc["targets"]:
        a = doc["argon2"]
        s = doc["targets"]["signIn"]
        lines.append(
            f"- argon2id (m={a['memory_kib']} KiB, t={a['time_cost']}, p={a['parallelism']}), one "
            f"thread on core {a['core']}: {a['hash_per_s']} hashes/s ({a['hash_ms']} ms wall, "
            f"{a['hash_cpu_ms']} ms CPU), {a['verify_per_s']} verifications/s "
            f"({a['verify_cpu_ms']} ms CPU); signIn reaches "
            f"{fmt(s.get('ratio_to_argon2_verify'), 3)} x the wall-clock verification rate, and "
            f"costs the server {fmt(s.get('server_cpu_ms_per_request'), 1)} ms CPU per sign-in "
            f"= {fmt(s.get('cpu_ratio_to_argon2_verify'), 2)} x one verification's CPU."
        )
    loaded = doc["loaded"]
    if loaded is not None:
        lines.append(
            f"- `me` under password changes: {loaded['me_rps']:.1f} req/s = "
            f"{fmt(loaded['rps_percent_of_unloaded'])} % of unloaded `me` "
            f"({loaded['unloaded_me_rps']:.1f}); p99 {loaded['me_p99_ms']:.2f} ms vs "
            f"{loaded['unloaded_me_p99_ms']:.2f} ms ({fmt(loaded['p99_percent_of_unloaded'])} %); "
            f"{loaded['password_changes_per_s']:.1f} password changes/s alongside "
            f"({loaded['password_change_errors']} errors)."
        )
    lines.extend(floors(doc["targets"]))
    rss = doc["server"]
    lines.append(
        f"- Amend worker peak RSS (VmHWM): {rss['peak_rss_kib'] / 1024:.1f} MiB; "
        f"baseline worker: {fmt((rss['baseline_peak_rss_kib'] or 0) / 1024)} MiB."
    )
    lines.append(
        f"- seeding {doc['config']['users']} users: {doc['seed_seconds']:.1f} s; whole run "
        f"{doc.get('elapsed_s', 0):.0f} s; load average at start {m.get('loadavg_at_start')}, "
        f"at end {m.get('loadavg_at_end')}."
    )
    return "\n".join(lines)


def build_document(
    args: argparse.Namespace,
    info: dict[str, Any],
    core: tuple[int | None, int | None],
    seeded: Seeded,
    argon2: dict[str, Any] | None,
    runner: Runner,
    servers: dict[str, Server],
    hwm: dict[str, int | None],
) -> dict[str, Any]:
    results = runner.results
    table: list[dict[str, Any]] = []
    targets: dict[str, dict[str, Any]] = {}
    last_baseline: Result | None = None
    for r in results:
        row = asdict(r)
        row["socket_errors_by_kind"] = row.pop("socket_errors")
        row["socket_errors"] = r.socket_error_count
        if r.server == "baseline":
            last_baseline = r
        elif last_baseline is not None and r.target != "password_changes":
            row["baseline"] = last_baseline.target
            row["baseline_rps"] = last_baseline.rps
            row["ratio_to_baseline"] = ratio(r.rps, last_baseline.rps)
            if r.server_cpu_ms_per_request and last_baseline.server_cpu_ms_per_request:
                # How many times the baseline's CPU one request costs (noise-robust).
                row["cpu_ratio_to_baseline"] = round(
                    r.server_cpu_ms_per_request / last_baseline.server_cpu_ms_per_request, 2
                )
        table.append(row)
        if r.server != "baseline":
            targets[r.target] = row
        else:
            targets.setdefault(r.target + "_runs", {"runs": []})["runs"].append(row)
    if argon2 is not None and "signIn" in targets:
        _sign_in_against_argon2(targets["signIn"], argon2)
    baseline_rps = [r.rps for r in results if r.target == "baseline"]
    return {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": info,
        "config": {
            "users": args.users,
            "duration_s": args.duration,
            "connections": CONNECTIONS,
            "password_change_connections": CHANGER_CONNECTIONS,
            "server_core": core[0],
            "wrk_core": core[1],
            "workers": args.workers,
            "argon2": "production defaults",
            "database": args.database,
        },
        "seed_seconds": round(seeded.seconds, 2),
        "argon2": argon2,
        "targets": targets,
        "baseline_rps_runs": baseline_rps,
        "baseline_rps_median": statistics.median(baseline_rps) if baseline_rps else None,
        "loaded": _loaded(targets) if "me_loaded" in targets else None,
        "server": {
            "peak_rss_kib": hwm.get("amend"),
            "baseline_peak_rss_kib": hwm.get("baseline"),
            "pid": servers["amend"].proc.pid,
        },
        "table": table,
    }


def _sign_in_against_argon2(sign_in: dict[str, Any], argon2: dict[str, Any]) -> None:
    sign_in["ratio_to_argon2_verify"] = ratio(sign_in["rps"], argon2["verify_per_s"])
    sign_in["ratio_to_argon2_hash"] = ratio(sign_in["rps"], argon2["hash_per_s"])
    if sign_in.get("server_cpu_ms_per_request") and argon2.get("verify_cpu_ms"):
        sign_in["cpu_ratio_to_argon2_verify"] = ratio(
            sign_in["server_cpu_ms_per_request"], argon2["verify_cpu_ms"]
        )


def _loaded(targets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    me, loaded, changes = targets["me"], targets["me_loaded"], targets["password_changes"]
    return {
        "me_rps": loaded["rps"],
        "me_p99_ms": loaded["p99_ms"],
        "unloaded_me_rps": me["rps"],
        "unloaded_me_p99_ms": me["p99_ms"],
        "rps_percent_of_unloaded": round(100 * loaded["rps"] / me["rps"], 1) if me["rps"] else None,
        "p99_percent_of_unloaded": round(100 * loaded["p99_ms"] / me["p99_ms"], 1)
        if me["p99_ms"]
        else None,
        "password_changes_per_s": changes["rps"],
        "password_change_errors": changes["non2xx"]
        + changes["app_errors"]
        + changes["socket_errors"],
    }


# The floors each target must reach against the baseline doing its work.
FLOORS = {"updateMe": 0.5, "patch_me": 0.7, "me": 0.6}
TAIL = 4.0  # p99 at most this many times p50


def floors(targets: dict[str, dict[str, Any]]) -> list[str]:
    lines = []
    for name, floor in FLOORS.items():
        row = targets.get(name)
        if row is None or row.get("ratio_to_baseline") is None:
            continue
        errors = row["non2xx"] + row["app_errors"] + row["socket_errors"]
        tail = row["p99_ms"] / row["p50_ms"] if row["p50_ms"] else None
        met = row["ratio_to_baseline"] >= floor and errors == 0 and (tail or 0) <= TAIL
        lines.append(
            f"- {row['label']}: {row['ratio_to_baseline']:.3f} x baseline req/s (floor {floor}), "
            f"p99/p50 {fmt(tail, 1)} (at most {TAIL}), {errors} errors, "
            f"{fmt(row.get('cpu_ratio_to_baseline'), 2)} x the baseline's CPU per request: "
            f"{'met' if met else 'NOT met'}."
        )
    return lines
