"""The password hasher: hashes stored by the passlib-based versions keep verifying, outdated
parameters ask for a rehash, garbage never raises, and hashing threads run below the loop.

Cheap argon2 parameters except where a test is about the production ones; the production
parameters' format and timing are covered in tests/unit/test_passwords.py.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher as Argon2
from argon2 import Type

from api.security import passwords
from api.security.passwords import PasswordHasher

PASSWORD = "Zght943!x"
CHEAP = {"memory_kib": 8, "time_cost": 1, "parallelism": 1}

# Written by the passlib-based hasher (CryptContext, argon2 type ID) for PASSWORD: the exact
# strings stored in databases today.
PASSLIB_CHEAP = (
    "$argon2id$v=19$m=8,t=1,p=1$uHfOmRPi/B+j9D7nfC8l5A$yV9j/rFcjEHEV2sHWmwsH81AV9zNXTbhT7tvmeZE0/Y"
)
PASSLIB_PRODUCTION = (
    "$argon2id$v=19$m=19456,t=2,p=1$AQDA+H8P4Zyz1rpXitF67w$"
    "KID0s8N+5SdrGCbJEiEh59Pw2KIxDOisFccMp1jRmko"
)


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    h = PasswordHasher(**CHEAP)
    yield h
    h.close()


def thread_nice(tid: int) -> int:
    """Field 19 of /proc/self/task/<tid>/stat: the thread's own nice value."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()  # fields from 3 (state) on; comm may hold spaces
    return int(fields[19 - 3])


# ------------------------------------------------------------------- stored hash formats


async def test_a_hash_stored_by_passlib_verifies_without_a_rehash(hasher: PasswordHasher) -> None:
    result = await hasher.verify(PASSWORD, PASSLIB_CHEAP)
    assert (result.ok, result.new_hash) == (True, None)
    assert (await hasher.verify("Zght943!y", PASSLIB_CHEAP)).ok is False


async def test_a_passlib_hash_with_production_parameters_verifies() -> None:
    production = PasswordHasher(memory_kib=19_456, time_cost=2, parallelism=1, threads=1)
    try:
        result = await production.verify(PASSWORD, PASSLIB_PRODUCTION)
        assert (result.ok, result.new_hash) == (True, None)
        assert not (await production.verify("Zght943!y", PASSLIB_PRODUCTION)).ok
    finally:
        production.close()


# -------------------------------------------------------------------------- rehashing


@pytest.mark.parametrize(
    ("stored", "configured"),
    [
        ({"memory_kib": 8, "time_cost": 1, "parallelism": 1}, {"memory_kib": 16}),
        ({"memory_kib": 8, "time_cost": 1, "parallelism": 1}, {"time_cost": 2}),
        ({"memory_kib": 16, "time_cost": 1, "parallelism": 2}, {"memory_kib": 16}),
        # Lowered parameters are applied too: the configuration is the source of truth.
        ({"memory_kib": 16, "time_cost": 2, "parallelism": 1}, {}),
    ],
)
async def test_a_hash_with_other_parameters_is_replaced_on_verify(
    stored: dict[str, int], configured: dict[str, int]
) -> None:
    params = {**CHEAP, **configured}
    old_hasher = PasswordHasher(**stored)
    new_hasher = PasswordHasher(**params)
    try:
        old = await old_hasher.hash(PASSWORD)
        result = await new_hasher.verify(PASSWORD, old)
        assert result.ok
        assert result.new_hash is not None and result.new_hash != old
        m, t, p = params["memory_kib"], params["time_cost"], params["parallelism"]
        assert result.new_hash.startswith(f"$argon2id$v=19$m={m},t={t},p={p}$")
        assert await new_hasher.verify(PASSWORD, result.new_hash) == passwords.Verification(
            ok=True, new_hash=None
        )
        # A wrong password never produces a hash.
        assert await new_hasher.verify("Zght943!y", old) == passwords.Verification(
            ok=False, new_hash=None
        )
    finally:
        old_hasher.close()
        new_hasher.close()


async def test_an_argon2i_hash_is_upgraded_to_argon2id(hasher: PasswordHasher) -> None:
    old = Argon2(time_cost=1, memory_cost=8, parallelism=1, type=Type.I).hash(PASSWORD)
    result = await hasher.verify(PASSWORD, old)
    assert result.ok
    assert result.new_hash is not None and result.new_hash.startswith("$argon2id$")


# ------------------------------------------------------------------------ bad inputs


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not-a-hash",
        "$argon2id$",
        "$argon2id$v=19$m=8,t=1,p=1$",
        PASSLIB_CHEAP[:-10],  # truncated
        PASSLIB_CHEAP.replace("m=8,", "m=x,"),
        PASSLIB_CHEAP.replace("$v=19", "$v=99"),
        "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",  # well-formed, wrong
        "$argon2x$v=19$m=8,t=1,p=1$uHfOmRPi/B+j9D7nfC8l5A$yV9j/rFcjEHEV2sHWmwsH81AV9zNXTbhT7tvmeZE0",
        "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
        "$argon2id$v=19$m=8,t=1,p=1$é$é",  # not ASCII
        "\x00" * 40,
    ],
)
async def test_a_garbage_stored_hash_does_not_verify_and_does_not_raise(
    hasher: PasswordHasher, stored: str
) -> None:
    assert await hasher.verify(PASSWORD, stored) == passwords.Verification(ok=False, new_hash=None)


@pytest.mark.parametrize("password", ["", "\ud800", "x" * 100_000, "pass\x00word"])
async def test_odd_passwords_never_raise_on_verify(hasher: PasswordHasher, password: str) -> None:
    stored = await hasher.hash(PASSWORD)
    assert (await hasher.verify(password, stored)).ok is False
    await hasher.dummy_verify(password)


# ---------------------------------------------------------------------- dummy verify


async def test_dummy_verify_runs_a_real_verification_with_the_configured_parameters(
    hasher: PasswordHasher,
) -> None:
    await hasher.dummy_verify(PASSWORD)
    await hasher.dummy_verify("")
    dummy = hasher._dummy_hash
    assert dummy.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # It is the configured hasher's own hash: verifying against it is no cheaper.
    assert (await hasher.verify(PASSWORD, dummy)).ok is False


async def test_each_hasher_has_its_own_dummy_hash() -> None:
    a, b = PasswordHasher(**CHEAP), PasswordHasher(**CHEAP)
    try:
        assert a._dummy_hash != b._dummy_hash
    finally:
        a.close()
        b.close()


# ------------------------------------------------------------ hashing thread priority


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice is Linux's")
async def test_hashing_threads_run_ten_nice_steps_below_the_event_loop_thread(
    hasher: PasswordHasher,
) -> None:
    loop_tid = threading.get_native_id()
    loop_nice = thread_nice(loop_tid)
    # What the hashing thread itself sees, and the kernel's view of it from outside.
    tid, seen = hasher._pool.submit(
        lambda: (threading.get_native_id(), os.getpriority(os.PRIO_PROCESS, 0))
    ).result()
    assert tid != loop_tid
    expected = min(19, loop_nice + passwords.HASH_THREAD_NICE_INCREMENT)
    assert passwords.HASH_THREAD_NICE_INCREMENT == 10
    assert thread_nice(tid) == expected
    assert seen == expected
    # Only that thread: the event loop's thread (and so the process default) is untouched.
    assert thread_nice(loop_tid) == loop_nice
    assert os.getpriority(os.PRIO_PROCESS, 0) == loop_nice


def test_a_refused_setpriority_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "setpriority", refuse)
    passwords._lower_hash_thread_priority()  # no exception


async def test_hashing_still_works_when_priorities_cannot_be_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError("not allowed here")

    monkeypatch.setattr(os, "setpriority", refuse)
    h = PasswordHasher(**CHEAP)
    try:
        stored = await h.hash(PASSWORD)
        assert (await h.verify(PASSWORD, stored)).ok
    finally:
        h.close()


def test_other_systems_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Elsewhere PRIO_PROCESS names a process, not a thread: no call at all."""
    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(os, "setpriority", lambda *args: calls.append(args))
    passwords._lower_hash_thread_priority()
    assert calls == []


# ------------------------------------------------------------------------ pool size


@pytest.mark.parametrize(("cpus", "threads", "workers"), [(1, 2, 1), (2, 2, 2), (8, 2, 2)])
def test_no_more_hashing_threads_than_usable_cpus(
    monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int, workers: int
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    h = PasswordHasher(**CHEAP, threads=threads)
    try:
        assert h._pool._max_workers == workers
    finally:
        h.close()


def test_usable_cpus_without_affinity_support(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert passwords.usable_cpus() == 1
