"""Throwaway PostgreSQL clusters and PgBouncers, for `scripts/with-postgres` and for tests that
stop, freeze or restart a database of their own.

    with cluster() as pg:            # initdb + start on a free loopback port
        pg.url                       # postgresql+asyncpg://postgres@127.0.0.1:PORT/postgres
        pg.stop("immediate"); pg.start()
        pg.freeze(); pg.thaw()       # SIGSTOP / SIGCONT the postmaster and its children
        with pgbouncer(pg.port) as bouncer:   # transaction pooling in front of it
            bouncer.url

Missing server binaries (`postgresql`) or PgBouncer (`pgbouncer`) are installed from the Debian
packages when running as root. As root the servers run as the unprivileged `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# A throwaway cluster for tests: durability off, many connections for xdist.
FAST = (
    "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=400 -c shared_buffers=64MB"
)
DURABLE = "-c max_connections=100"


def _apt_install(package: str) -> None:
    if os.geteuid() != 0:
        sys.exit(f"pgcluster: {package} is missing; install the Debian package '{package}'")
    print(f"pgcluster: installing the Debian package {package}", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
        check=True,
        env=env,
    )


def find_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent

    def version(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=version)
    return Path(candidates[-1]).parent if candidates else None


def ensure_bin() -> Path:
    bindir = find_bin()
    if bindir is None:
        _apt_install("postgresql")
        bindir = find_bin()
    if bindir is None:
        sys.exit("pgcluster: postgresql installed but pg_ctl not found")
    return bindir


def ensure_pgbouncer() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        _apt_install("pgbouncer")
        found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        sys.exit("pgcluster: pgbouncer installed but not found")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _owned_dir(prefix: str) -> tuple[Path, list[str]]:
    """A temporary directory the servers may write, and the command prefix to run them."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() != 0:
        return base, []
    shutil.chown(base, "postgres", "postgres")
    return base, ["runuser", "-u", "postgres", "--"]


class Cluster:
    def __init__(self, options: str = FAST) -> None:
        self.bindir = ensure_bin()
        self.base, self.prefix = _owned_dir("amend-pg-")
        self.data, self.sock, self.log = self.base / "data", self.base / "sock", self.base / "log"
        self.sock.mkdir()
        if self.prefix:
            shutil.chown(self.sock, "postgres", "postgres")
        self.port = free_port()
        self.options = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 {options}"
        self._pg(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C.UTF-8", "--no-instructions",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg(self, program: str, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.prefix, str(self.bindir / program), *args],
            check=check,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def start(self) -> None:
        self._pg(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", self.options,
            "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def pids(self) -> list[int]:
        """The postmaster and its children."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(Path(stat).parent.name))
        return [postmaster, *children]

    def _signal(self, signum: int) -> None:
        """A backend may exit between listing and signalling (its client went away)."""
        for pid in self.pids():
            with suppress(ProcessLookupError):
                os.kill(pid, signum)

    def freeze(self) -> None:
        """Accepting connections (the kernel does) and answering nothing."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal(signal.SIGCONT)

    def remove(self) -> None:
        # (The postmaster may be gone, or going, with its pid file.)
        with suppress(OSError, ValueError, IndexError):
            self.thaw()
        self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


@contextmanager
def cluster(options: str = FAST) -> Iterator[Cluster]:
    pg = Cluster(options)
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


class Bouncer:
    def __init__(self, port: int, process: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.process = process

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@contextmanager
def pgbouncer(server_port: int, *, pool_size: int = 20) -> Iterator[Bouncer]:
    """PgBouncer in transaction pooling mode in front of 127.0.0.1:server_port (any database,
    user `postgres`, trust)."""
    program = ensure_pgbouncer()
    base, prefix = _owned_dir("amend-bouncer-")
    port = free_port()
    (base / "users.txt").write_text('"postgres" ""\n')
    (base / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {base / 'users.txt'}\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        f"logfile = {base / 'pgbouncer.log'}\n"
    )
    for path in base.iterdir():
        if prefix:
            shutil.chown(path, "postgres", "postgres")
    process = subprocess.Popen(
        [*prefix, program, str(base / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("pgbouncer did not start") from None
                time.sleep(0.05)
        yield Bouncer(port, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    # `python scripts/pgcluster.py`: install what the tests need, once, before they run in
    # parallel (two apt-get runs at once would fight over the package lock).
    ensure_bin()
    ensure_pgbouncer()
