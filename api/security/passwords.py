"""Password hashing and verification through one passlib `CryptContext`, off the event loop.

New hashes are argon2id (argon2-cffi backend). Hashes brought in by `amend users import` in
the formats of SPEC §10 verify through the same context and are replaced by an argon2id hash
at the first successful password check (`verify` returns it as `new_hash`), as are argon2id
hashes with parameters other than the configured ones.

Hashing costs tens of milliseconds of CPU by design; it runs in a small dedicated thread pool
(argon2-cffi releases the GIL) so one password change never stalls other requests, and the
pool's size bounds how much CPU hashing can take at once.

passlib's argon2 handler calls argon2-cffi's low-level functions and writes the same PHC
strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, 16-byte salt, 32-byte hash) as argon2-cffi's
own `PasswordHasher`; measured, its Python layer adds ~30-40 µs to a ~35 ms verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from passlib.context import CryptContext
from passlib.exc import UnknownHashError

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


# passlib scheme names of the formats SPEC §10 accepts, and the prefixes each may carry there
# (passlib's handlers identify a few more spellings, e.g. `$argon2d$` or bcrypt's `$2x$`).
IMPORTED_FORMATS: dict[str, tuple[str, ...]] = {
    "argon2": ("$argon2id$", "$argon2i$"),
    "bcrypt": ("$2a$", "$2b$", "$2y$"),
    "bcrypt_sha256": ("$bcrypt-sha256$",),
    "scrypt": ("$scrypt$",),
    "pbkdf2_sha256": ("$pbkdf2-sha256$",),
    "pbkdf2_sha512": ("$pbkdf2-sha512$",),
    "django_pbkdf2_sha256": ("pbkdf2_sha256$",),
    "sha512_crypt": ("$6$",),
    "sha256_crypt": ("$5$",),
    "md5_crypt": ("$1$",),
    "phpass": ("$P$", "$H$"),
    "ldap_salted_sha1": ("{SSHA}",),
}
PASSWORD_HASH_MAX_LENGTH = 255  # the column's size
# The bcrypt hashes passlib's parser takes as they are (`$2a$`/`$2b$`/`$2y$`, a two-digit cost
# 04-31, 22 salt and 31 checksum characters of bcrypt's base64 whose last ones leave the
# padding bits clear): `identify` knows them without the parser, ~10 µs less per imported
# line, and bcrypt is what most exports hold (Supabase, Auth0). Anything else is parsed.
# tests/unit/test_identify_fast_path.py checks the two agree.
_CANONICAL_BCRYPT = re.compile(
    r"\$2[aby]\$(?:0[4-9]|[12][0-9]|3[01])\$"
    r"[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{30}[.CGKOSWaeimquy26]",
    re.ASCII,
)


def crypt_context(*, memory_kib: int, time_cost: int, parallelism: int) -> CryptContext:
    """The one context: argon2id with these parameters for new hashes; every other format
    (and argon2 with other parameters) verifies and reports that it needs an update."""
    return CryptContext(
        schemes=list(IMPORTED_FORMATS),
        default="argon2",
        deprecated=[name for name in IMPORTED_FORMATS if name != "argon2"],
        argon2__type="ID",
        argon2__memory_cost=memory_kib,
        argon2__rounds=time_cost,
        argon2__parallelism=parallelism,
        argon2__salt_size=16,
        argon2__digest_size=32,
    )


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    new_hash: str | None  # set when the stored hash is of another format or outdated parameters


class PasswordHasher:
    def __init__(
        self, *, memory_kib: int, time_cost: int, parallelism: int, threads: int = 2
    ) -> None:
        self.context = crypt_context(
            memory_kib=memory_kib, time_cost=time_cost, parallelism=parallelism
        )
        # More hashing threads than usable CPUs add no throughput: on one core two argon2
        # threads take turns, each evicting the other's 19 MiB from the caches (~15% more CPU
        # per hash, measured), and every hash waits for both to finish.
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, min(threads, usable_cpus())),
            thread_name_prefix="amend-hash",
            initializer=_lower_hash_thread_priority,
        )
        # A real argon2id hash (of a random string) with the configured parameters: verifying
        # against it costs the same as verifying a wrong password for a real user with a
        # current hash, so "unknown user" cannot be told apart by timing. It stays argon2id
        # whatever formats were imported.
        self._dummy_hash = self.context.hash(secrets.token_urlsafe(16))

    def identify(self, password_hash: str) -> str | None:
        """The scheme of a hash in one of the formats of SPEC §10 that parses, else None.
        Cheap (no key derivation): used to validate imported hashes."""
        if _CANONICAL_BCRYPT.fullmatch(password_hash) is not None:
            return "bcrypt"
        return self._parse(password_hash)

    def _parse(self, password_hash: str) -> str | None:
        if len(password_hash) > PASSWORD_HASH_MAX_LENGTH or not password_hash.isascii():
            return None
        try:
            scheme = self.context.identify(password_hash)
        except (UnknownHashError, ValueError, TypeError):
            return None
        if scheme is None or not password_hash.startswith(IMPORTED_FORMATS.get(scheme, ())):
            return None
        try:
            self.context.handler(scheme).from_string(password_hash)
        except (ValueError, TypeError):
            return None
        return str(scheme)

    async def hash(self, password: str) -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.context.hash, password)

    async def verify(self, password: str, password_hash: str) -> Verification:
        """Check a password; `new_hash` asks the caller to store an upgraded hash."""
        loop = asyncio.get_running_loop()
        ok, new_hash = await loop.run_in_executor(
            self._pool, self._verify_sync, password, password_hash
        )
        return Verification(ok=ok, new_hash=new_hash)

    def _verify_sync(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        if self.identify(password_hash) is None:
            # No usable hash (an imported user without a password, or a damaged value): as
            # slow as a wrong password, and never a match.
            self._verify_against(password, self._dummy_hash)
            return False, None
        return self._verify_against(password, password_hash)

    def _verify_against(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        try:
            ok, new_hash = self.context.verify_and_update(password, password_hash)
        except (ValueError, TypeError):
            # A password the format refuses (e.g. beyond passlib's size limit), or a stored
            # value that only looked like a hash.
            return False, None
        return bool(ok), (str(new_hash) if ok and new_hash is not None else None)

    async def dummy_verify(self, password: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._verify_against, password, self._dummy_hash)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
