"""Password hashing with the production parameters (the rest of the suite uses cheap ones)."""

from __future__ import annotations

import asyncio
import time

import pytest

from api.config import Settings
from api.security.passwords import PasswordHasher


@pytest.fixture
async def production_hasher() -> PasswordHasher:
    s = Settings(secret_key="k" * 32)
    hasher = PasswordHasher(
        memory_kib=s.argon2_memory_kib,
        time_cost=s.argon2_time_cost,
        parallelism=s.argon2_parallelism,
    )
    yield hasher  # type: ignore[misc]
    hasher.close()


async def test_production_hash_is_argon2id_with_owasp_parameters(
    production_hasher: PasswordHasher,
) -> None:
    hashed = await production_hasher.hash("Zght943!x")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert "Zght943!x" not in hashed
    assert (await production_hasher.verify("Zght943!x", hashed)).ok
    assert not (await production_hasher.verify("Zght943!y", hashed)).ok


async def test_cheaper_stored_hash_is_upgraded_on_verify(production_hasher: PasswordHasher) -> None:
    cheap = PasswordHasher(memory_kib=64, time_cost=1, parallelism=1)
    try:
        old = await cheap.hash("Zght943!x")
    finally:
        cheap.close()
    result = await production_hasher.verify("Zght943!x", old)
    assert result.ok
    assert result.new_hash is not None and "m=19456,t=2" in result.new_hash


async def test_dummy_verify_costs_about_as_much_as_a_real_one(
    production_hasher: PasswordHasher,
) -> None:
    hashed = await production_hasher.hash("Zght943!x")
    start = time.perf_counter()
    await production_hasher.verify("wrong-password1", hashed)
    real = time.perf_counter() - start
    start = time.perf_counter()
    await production_hasher.dummy_verify("wrong-password1")
    dummy = time.perf_counter() - start
    assert dummy > real / 3


async def test_hashing_does_not_block_the_event_loop(production_hasher: PasswordHasher) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    await asyncio.gather(*(production_hasher.hash(f"Zght943!{i}") for i in range(4)))
    task.cancel()
    assert ticks >= 10


async def test_malformed_stored_hash_does_not_verify(production_hasher: PasswordHasher) -> None:
    assert not (await production_hasher.verify("Zght943!x", "not-a-hash")).ok
