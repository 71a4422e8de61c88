"""argon2id password hashing, always off the event loop.

Hashing costs tens of milliseconds of CPU by design; it runs in a small dedicated thread pool
(argon2-cffi releases the GIL) so one password change never stalls other requests, and the
pool's size bounds how much CPU hashing can take at once.

argon2-cffi is used directly, without passlib's layer on top of it: the same PHC strings
(`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, 16-byte salt, 32-byte hash), so hashes stored by the
passlib-based versions keep verifying and hashes written now verify there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

# How much lower than the thread that starts them (the event loop's) the hashing threads run,
# in nice steps. Linux's scheduler splits a busy core by weight, and each nice step is ~1.25x:
# at +10 a hashing thread weighs 110 against the loop's 1024, so while the loop has work it
# gets ~90% of the core (~82% against two hashing threads) and requests it serves stay fast;
# hashing still gets ~10% and keeps progressing (a sign-in is slower under load, never
# starved), and when the loop idles, hashing gets the whole core: weights only split
# contended time. +19 (weight 15, ~1.4%) would starve sign-ins behind any read load.
# Measured on one core, a loop serving 32 concurrent 1 ms requests beside two clients changing
# passwords without pause: +0 kept 52% of its unloaded throughput (p99 68 ms, 8.2 changes/s),
# +5 73% (47 ms, 4.3/s), +10 87% (40 ms, 1.9/s), +19 97% (37 ms, 0.5/s).
HASH_THREAD_NICE_INCREMENT = 10


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. `taskset`), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _lower_hash_thread_priority() -> None:
    """Executor initializer: run this (hashing) thread below the event loop thread.

    On Linux `setpriority(PRIO_PROCESS, tid)` applies to the one thread `tid` (threads are
    scheduled separately, each with its own nice value). Elsewhere it would apply to a whole
    process, so nothing is done there; where the call is refused (a restricted container),
    hashing just runs at the loop's priority, as before.
    """
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        tid = threading.get_native_id()
        # Relative to the nice value inherited from the creating thread: never raises the
        # priority of a process that was started niced.
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + HASH_THREAD_NICE_INCREMENT))


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    new_hash: str | None  # set when the stored hash used outdated parameters


class PasswordHasher:
    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, threads: int = 2
    ) -> None:
        self._argon2 = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=argon2.Type.ID,
        )
        # More hashing threads than usable CPUs add no throughput: on one core two argon2
        # threads take turns, each evicting the other's 19 MiB from the caches (~15% more CPU
        # per hash, measured), and every hash waits for both to finish.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(threads, usable_cpus())),
            thread_name_prefix="amend-hash",
            initializer=_lower_hash_thread_priority,
        )
        # A real hash (of a random string) with the configured parameters: verifying against
        # it costs the same as verifying a wrong password for a real user, so "unknown user"
        # cannot be told apart by timing.
        self._dummy_hash = self._argon2.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._argon2.hash, password)

    async def verify(self, password: str, password_hash: str) -> Verification:
        """Check a password; `new_hash` asks the caller to store an upgraded hash."""
        loop = asyncio.get_running_loop()
        ok, new_hash = await loop.run_in_executor(
            self._pool, self._verify_sync, password, password_hash
        )
        return Verification(ok=ok, new_hash=new_hash)

    def _verify_sync(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            self._argon2.verify(password_hash, password)
        except (VerificationError, InvalidHashError, ValueError, TypeError):
            # A wrong password, or a stored value that is no argon2 hash (or not ASCII).
            return False, None
        try:
            outdated = self._argon2.check_needs_rehash(password_hash)
        except (InvalidHashError, ValueError):
            outdated = True  # verifiable yet unparsable parameters: replace it with a clean one
        return True, (self._argon2.hash(password) if outdated else None)

    async def dummy_verify(self, password: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._verify_sync, password, self._dummy_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
