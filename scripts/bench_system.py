"""Processes, the machine, CPU accounting: what every benchmark mode shares."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PASSWORD = "Bench-pw-4711x"
CONNECTIONS = 32
CHANGER_CONNECTIONS = 2
WRK_TIMEOUT = "30s"
MIN_HASHING_RUN = 5  # seconds: the shortest run that shows argon2-bound throughput at all
SAMPLE_MARK = "BENCH_SAMPLE "
RESULT_MARK = "BENCH_RESULT "

UPDATE_ME = (
    "mutation UpdateMe($i: UpdateMeInput!) { updateMe(input: $i) "
    "{ user { firstName version } errors { code message } } }"
)
ME = "query Me { me { id username firstName lastName email version updatedAt } }"
SIGN_IN = (
    "mutation SignIn($i: SignInInput!) { signIn(input: $i) "
    "{ token user { id } errors { code message } } }"
)
UPDATE_USER = (
    'mutation ChangePassword($uid: String!, $d: JSON!) { updateUser(endpoint: "users", '
    "uniqueId: $uid, data: $d, strategy: MERGE) { record { version } errors { code message } } }"
)
COUNTER = "@@N@@"  # replaced by a per-request counter in the Lua script

# --------------------------------------------------------------------------------------------
# processes


class Processes:
    """Every child process this script starts, each in its own session, so it can be ended
    with its children by process group (its own id) and nothing else."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[Any]] = []

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self._procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
        """SIGTERM to the child's group, then SIGKILL to whatever is left of it. The group is
        signalled only while its leader is not reaped yet (alive or a zombie), so its id
        cannot have been handed to an unrelated process meanwhile."""
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            with contextlib.suppress(ChildProcessError):
                while time.monotonic() < deadline:
                    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
                    if os.waitid(os.P_PID, proc.pid, flags) is not None:
                        break
                    time.sleep(0.05)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=timeout)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self._procs)):
            with contextlib.suppress(Exception):
                self.stop(proc)


class Interrupted(Exception):
    pass


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# machine and tools


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk is missing: apt-get install -y wrk")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
    found = shutil.which("wrk")
    if result.returncode != 0 or not found:
        raise SystemExit("bench: could not install wrk (apt-get install -y wrk failed)")
    return found


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def loadavg() -> list[float] | None:
    with contextlib.suppress(OSError, ValueError):
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    return None


def machine() -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    return {
        "nproc": len(cores),
        "loadavg_at_start": loadavg(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "memory_kib": _meminfo_total(),
    }


def _meminfo_total() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1])
    return None


def pin(core: int | None) -> list[str]:
    return [] if core is None or shutil.which("taskset") is None else ["taskset", "-c", str(core)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_status(pid: int, key: str) -> int | None:
    """A number of /proc/<pid>/status: VmHWM and VmRSS (KiB), Threads."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cpu_ticks(pid: int, tid: int | None = None) -> int | None:
    """utime + stime of a process (all its threads), or of one of its threads."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(path).read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    return None


def tree_ticks(pid: int) -> int | None:
    """utime + stime of a process and of every live descendant (a server's workers)."""
    own = cpu_ticks(pid)
    if own is None:
        return None
    parents: dict[int, list[tuple[int, int]]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            child = int(stat.parent.name)
            parents.setdefault(int(fields[1]), []).append(
                (child, int(fields[11]) + int(fields[12]))
            )
    total, todo = own, [pid]
    while todo:
        for child, ticks in parents.get(todo.pop(), []):
            total += ticks
            todo.append(child)
    return total


CLK_TCK = os.sysconf("SC_CLK_TCK")


def wait_idle(pids: list[int], *, limit: float = 60.0) -> float:
    """Wait until the servers stop burning CPU (requests queued by the last run finish), so
    one run's tail never counts against the next. Returns the seconds waited."""
    start = time.monotonic()
    quiet = 0
    last = [tree_ticks(p) for p in pids]
    while time.monotonic() - start < limit:
        time.sleep(0.2)
        now = [tree_ticks(p) for p in pids]
        busy = any(
            a is not None and b is not None and b - a > 2 for a, b in zip(last, now, strict=True)
        )
        last = now
        quiet = 0 if busy else quiet + 1
        if quiet >= 2:
            break
    return time.monotonic() - start
