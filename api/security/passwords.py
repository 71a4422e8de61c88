"""argon2id password hashing, always off the event loop.

Hashing costs tens of milliseconds of CPU by design; it runs in a small dedicated thread pool
(argon2-cffi releases the GIL) so one password change never stalls other requests, and the
pool's size bounds how much CPU hashing can take at once.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from passlib.context import CryptContext


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    new_hash: str | None  # set when the stored hash used outdated parameters


class PasswordHasher:
    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, threads: int = 2
    ) -> None:
        self._context = CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=memory_kib,
            argon2__rounds=time_cost,
            argon2__parallelism=parallelism,
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="amend-hash")
        # A real hash of a random string: verifying against it costs the same as verifying a
        # wrong password for a real user, so "unknown user" cannot be told apart by timing.
        self._dummy_hash = self._context.hash("amend-dummy-password-0")

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        result: str = await loop.run_in_executor(self._pool, self._context.hash, password)
        return result

    async def verify(self, password: str, password_hash: str) -> Verification:
        """Check a password; `new_hash` asks the caller to store an upgraded hash."""
        loop = asyncio.get_running_loop()
        ok, new_hash = await loop.run_in_executor(
            self._pool, self._verify_sync, password, password_hash
        )
        return Verification(ok=ok, new_hash=new_hash)

    def _verify_sync(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            ok, new_hash = self._context.verify_and_update(password, password_hash)
        except (ValueError, TypeError):
            return False, None
        return bool(ok), new_hash

    async def dummy_verify(self, password: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._verify_sync, password, self._dummy_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
