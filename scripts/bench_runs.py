"""The servers under test and the wrk runs against them, with the CPU each burnt."""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import re
import resource
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_system import (
    CLK_TCK,
    RESULT_MARK,
    SAMPLE_MARK,
    WRK_TIMEOUT,
    Processes,
    cpu_ticks,
    free_port,
    log,
    pin,
    proc_status,
    tree_ticks,
    wait_idle,
)
from bench_targets import Target

# --------------------------------------------------------------------------------------------
# servers and runs


@dataclass
class Server:
    name: str
    url: str
    proc: subprocess.Popen[Any]


def start_server(
    procs: Processes, name: str, args: list[str], env: dict[str, str], cwd: Path, log_path: Path
) -> Server:
    port = free_port()
    args = [a.replace("@PORT@", str(port)) for a in args]
    with log_path.open("wb") as fh:
        proc = procs.start(args, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"bench: {name} exited at start:\n{log_path.read_text()[-3000:]}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/healthz", timeout=2) as response,
        ):
            if response.status == 200:
                return Server(name, url, proc)
        time.sleep(0.1)
    raise SystemExit(f"bench: {name} did not answer /healthz within 60 s")


def preflight(server: Server, target: Target) -> None:
    """Send one request of the target with Python and insist on a real success, so a broken
    script fails loudly instead of measuring error pages."""
    path, headers, body = target.first_request()
    request = urllib.request.Request(
        server.url + path, data=body, headers=headers, method=target.method
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as error:
        raise SystemExit(
            f"bench: preflight of {target.name} failed: {error.code} {error.read()[:500]!r}"
        ) from None
    if re.search(r'"errors"\s*:\s*\[\s*\{', text):
        raise SystemExit(f"bench: preflight of {target.name} answered errors: {text[:500]}")


def visit_every_session(server: Server, target: Target, threads: int = 4) -> float:
    """Send the target's request once for every seeded user, over keep-alive connections.

    What a server remembers per session (Amend's verified-token cache, SQLite's page cache)
    then holds what it would hold after a few seconds of real traffic, whichever target is
    measured first; a 1 s warm-up reaches only a fraction of 10,000 users. Seconds taken."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    started = time.monotonic()

    def visit(rows: list[tuple[str, str, str, str]]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            for path, token, b1, b2 in rows:
                headers = dict(target.headers)
                if target.token_header:
                    headers[target.token_header] = target.token_prefix + token
                body = (b1 + "warm" + b2) if target.dynamic else b1
                conn.request(target.method, path, body=body.encode() or None, headers=headers)
                response = conn.getresponse()
                text = response.read()
                if response.status != 200 or re.search(rb'"errors"\s*:\s*\[\s*\{', text):
                    raise SystemExit(
                        f"bench: warming {target.name} failed: {response.status} {text[:300]!r}"
                    )
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(visit, target.rows[i::threads]) for i in range(threads)]:
            done.result()
    return time.monotonic() - started


@dataclass
class Result:
    target: str
    label: str
    server: str
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    non2xx: int
    app_errors: int
    socket_errors: dict[str, int]
    wrk_non2xx_line: int | None
    error_sample: str | None
    server_rss_kib: int | None = None
    server_hwm_kib: int | None = None
    server_threads: int | None = None
    # CPU the server burnt during the run: robust to a noisy machine where req/s is not.
    server_cpu_s: float | None = None
    server_core_percent: float | None = None  # of one core
    server_cpu_ms_per_request: float | None = None
    server_main_thread_percent: float | None = None  # of the server's CPU: the event loop
    wrk_core_percent: float | None = None  # near 100: the load generator, not the server, limits
    waited_idle_s: float = 0.0

    @property
    def socket_error_count(self) -> int:
        return sum(self.socket_errors.values())


def wrk_command(
    wrk: str, target: Target, url: str, seconds: int, core: int | None, nonce: int
) -> list[str]:
    return [
        *pin(core),
        wrk,
        "-t1",
        f"-c{target.connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(target.script),
        url,
        "--",
        f"r{nonce}",
    ]


def parse_wrk(target: Target, output: str) -> Result:
    values = None
    sample = None
    non2xx_line = None
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            values = [int(v) for v in line[len(RESULT_MARK) :].split()]
        elif line.startswith(SAMPLE_MARK):
            sample = line[len(SAMPLE_MARK) :]
        elif m := re.match(r"\s*Non-2xx or 3xx responses:\s*(\d+)", line):
            non2xx_line = int(m.group(1))
    if values is None:
        raise SystemExit(f"bench: wrk printed no result for {target.name}:\n{output[-2000:]}")
    req, dur, _bytes, conn, read, write, _status, timeout, p50, p90, p99, mx, mean, n2, ae = values
    duration = dur / 1e6
    return Result(
        target=target.name,
        label=target.label,
        server=target.server,
        connections=target.connections,
        duration_s=round(duration, 3),
        requests=req,
        rps=round(req / duration, 1) if duration > 0 else 0.0,
        p50_ms=p50 / 1000,
        p90_ms=p90 / 1000,
        p99_ms=p99 / 1000,
        max_ms=mx / 1000,
        mean_ms=mean / 1000,
        non2xx=n2,
        app_errors=ae,
        socket_errors={"connect": conn, "read": read, "write": write, "timeout": timeout},
        wrk_non2xx_line=non2xx_line,
        error_sample=sample,
    )


class Runner:
    def __init__(
        self, procs: Processes, wrk: str, servers: dict[str, Server], core: int | None
    ) -> None:
        self.procs = procs
        self.wrk = wrk
        self.servers = servers
        self.core = core
        self.results: list[Result] = []
        self.invocations = 0
        self._cpu_at_start: dict[int, tuple[int | None, int | None]] = {}
        # CPU burnt for the servers outside their own processes (PostgreSQL's backends).
        self.database_ticks: Callable[[], int | None] | None = None

    def server_ticks(self, pid: int) -> int | None:
        """The server with its workers, and the database when it runs in its own processes."""
        own = tree_ticks(pid)
        if self.database_ticks is None or own is None:
            return own
        database = self.database_ticks()
        return None if database is None else own + database

    def pids(self) -> list[int]:
        return [s.proc.pid for s in self.servers.values()]

    def start_wrk(self, target: Target, seconds: int) -> subprocess.Popen[str]:
        server = self.servers[target.server]
        if server.proc.poll() is not None:
            raise SystemExit(f"bench: the {server.name} server died")
        self.invocations += 1
        pid = server.proc.pid
        cpu = (self.server_ticks(pid), cpu_ticks(pid, pid))
        proc = self.procs.start(
            wrk_command(self.wrk, target, server.url, seconds, self.core, self.invocations),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._cpu_at_start[proc.pid] = cpu
        return proc

    def finish(self, target: Target, proc: subprocess.Popen[str], seconds: int) -> Result:
        pid = self.servers[target.server].proc.pid
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            out, _ = proc.communicate(timeout=seconds + 120)
            cpu_end = (self.server_ticks(pid), cpu_ticks(pid, pid))
        finally:
            self.procs.stop(proc)
        # wrk is the only child reaped meanwhile (the servers live on): its CPU time.
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        wrk_cpu = (reaped.ru_utime + reaped.ru_stime) - (children.ru_utime + children.ru_stime)
        if proc.returncode != 0:
            raise SystemExit(f"bench: wrk failed for {target.name}:\n{out[-2000:]}")
        result = parse_wrk(target, out)
        (total0, main0), (total1, main1) = self._cpu_at_start.pop(proc.pid), cpu_end
        if result.duration_s > 0:
            result.wrk_core_percent = round(100 * wrk_cpu / result.duration_s, 1)
        if None not in (total0, total1, main0, main1) and result.duration_s > 0:
            assert total0 is not None and total1 is not None
            assert main0 is not None and main1 is not None
            cpu = (total1 - total0) / CLK_TCK
            result.server_cpu_s = round(cpu, 2)
            result.server_core_percent = round(100 * cpu / result.duration_s, 1)
            if result.requests:
                result.server_cpu_ms_per_request = round(1000 * cpu / result.requests, 2)
            if total1 > total0:
                result.server_main_thread_percent = round(
                    100 * (main1 - main0) / (total1 - total0), 1
                )
        result.server_rss_kib = proc_status(pid, "VmRSS")
        result.server_hwm_kib = proc_status(pid, "VmHWM")
        result.server_threads = proc_status(pid, "Threads")
        return result

    def run(self, target: Target, seconds: int, *, record: bool = True) -> Result:
        waited = wait_idle(self.pids())
        proc = self.start_wrk(target, seconds)
        result = self.finish(target, proc, seconds)
        result.waited_idle_s = round(waited, 2)
        if record:
            self.results.append(result)
            log(
                f"{target.name:<16} {result.rps:>9.1f} req/s  p50 {result.p50_ms:7.2f} ms"
                f"  p99 {result.p99_ms:8.2f} ms  non-2xx {result.non2xx}"
                f"  app-errors {result.app_errors}  socket {result.socket_error_count}"
            )
        return result

    def run_loaded(self, me: Target, changers: Target, seconds: int) -> tuple[Result, Result]:
        """`me` for `seconds` while the changers run from before it starts to after it ends."""
        wait_idle(self.pids())
        background = self.start_wrk(changers, seconds + 2)
        try:
            time.sleep(1.0)
            foreground = self.start_wrk(me, seconds)
            loaded = self.finish(me, foreground, seconds)
        finally:
            changes = self.finish(changers, background, seconds + 2)
        loaded.target, loaded.label = "me_loaded", "GraphQL me, 2 conns changing passwords"
        # The server's CPU went to both loads: per-request figures would mislead.
        loaded.server_cpu_ms_per_request = changes.server_cpu_ms_per_request = None
        self.results += [loaded, changes]
        for r in (loaded, changes):
            log(
                f"{r.target:<16} {r.rps:>9.1f} req/s  p50 {r.p50_ms:7.2f} ms"
                f"  p99 {r.p99_ms:8.2f} ms  non-2xx {r.non2xx}  app-errors {r.app_errors}"
                f"  socket {r.socket_error_count}"
            )
        return loaded, changes
