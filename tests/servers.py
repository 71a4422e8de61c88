"""Real `amend serve` processes for process-level tests (several instances, crashes)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import CHEAP_ARGON2, PASSWORD, SECRET


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMEND_")}
    env.update(CHEAP_ARGON2)
    env.update(AMEND_DATABASE_URL=database_url, AMEND_SECRET_KEY=SECRET, AMEND_LOG_LEVEL="warning")
    env.update(extra)
    return env


def amend(cwd: Path, database_url: str, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "api", *args],
        cwd=cwd,
        env=server_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def create_project(cwd: Path, database_url: str, name: str = "acme") -> dict[str, str]:
    data = json.loads(amend(cwd, database_url, "project", "create", name, "--json"))
    assert isinstance(data, dict)
    return data


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, as in a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)


def _wait_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"amend serve exited with {process.returncode}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise TimeoutError("amend serve did not become ready")


@contextmanager
def serve(
    cwd: Path, database_url: str, *args: str, log: Path | None = None, **env: str
) -> Iterator[Server]:
    """`amend serve` on a free port; its stdout and stderr go to `log` when given."""
    port = free_port()
    output = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=server_env(database_url, **env),
        stdout=output,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
    )
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        _wait_ready(server.base_url, process)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
        if log is not None:
            output.close()  # type: ignore[union-attr]


async def sign_up(
    client: httpx.AsyncClient, server: Server, key: str, name: str = "ann"
) -> tuple[str, str]:
    """A user made through the record API of a served process: its uniqueId and bearer."""
    r = await client.post(
        f"{server.base_url}/1/ce/users",
        params={"key": key},
        json={"username": name, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["uniqueId"]), str(r.headers["authorization"])


async def merge_concurrently(
    client: httpx.AsyncClient,
    servers: tuple[Server, ...],
    key: str,
    unique_id: str,
    auth: str,
    n: int = 30,
) -> httpx.Response:
    """`n` concurrent merges of one member each, spread over `servers`; every one answered 200
    and every member present afterwards. The record as the last server reads it."""

    async def merge(i: int) -> int:
        r = await client.put(
            f"{servers[i % len(servers)].base_url}/1/ce/users",
            params={"key": key, "uniqueId": unique_id, "strategy": "merge"},
            json={f"k{i}": i},
            headers={"Authorization": auth},
        )
        return r.status_code

    assert await asyncio.gather(*(merge(i) for i in range(n))) == [200] * n
    r = await client.get(
        f"{servers[-1].base_url}/1/ce/users",
        params={"key": key, "uniqueId": unique_id},
        headers={"Authorization": auth},
    )
    assert {f"k{i}" for i in range(n)} <= set(r.json()["data"])
    return r
