"""The one passlib CryptContext: argon2id for new hashes, the imported formats deprecated."""

from __future__ import annotations

import time

import pytest
from passlib import hash as ph

from api.config import Settings
from api.security.passwords import IMPORTED_FORMATS, PasswordHasher, crypt_context
from tests.transfer.helpers import FORMATS, PASSWORD


@pytest.fixture
def hasher() -> PasswordHasher:
    h = PasswordHasher(memory_kib=64, time_cost=1, parallelism=1)
    yield h  # type: ignore[misc]
    h.close()


def test_production_context_makes_argon2id_with_owasp_parameters_on_argon2_cffi() -> None:
    s = Settings(secret_key="k" * 32)
    context = crypt_context(
        memory_kib=s.argon2_memory_kib,
        time_cost=s.argon2_time_cost,
        parallelism=s.argon2_parallelism,
    )
    hashed = context.hash(PASSWORD)
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert context.default_scheme() == "argon2"
    assert context.handler("argon2").get_backend() == "argon2_cffi"
    assert not context.needs_update(hashed)


def test_configured_test_cost_reaches_the_context(hasher: PasswordHasher) -> None:
    assert hasher.context.hash(PASSWORD).startswith("$argon2id$v=19$m=64,t=1,p=1$")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_imported_format_is_known_and_needs_an_update(
    fmt: str, hasher: PasswordHasher
) -> None:
    hashed = FORMATS[fmt](PASSWORD)
    assert hasher.identify(hashed) in IMPORTED_FORMATS
    assert hasher.context.verify(PASSWORD, hashed)
    ok, new_hash = hasher.context.verify_and_update(PASSWORD, hashed)
    assert ok and new_hash is not None and new_hash.startswith("$argon2id$v=19$m=64,t=1,p=1$")


def test_argon2id_with_other_parameters_needs_an_update(hasher: PasswordHasher) -> None:
    other = ph.argon2.using(type="ID", memory_cost=128, rounds=1).hash(PASSWORD)
    assert hasher.context.needs_update(other)
    assert not hasher.context.needs_update(hasher.context.hash(PASSWORD))


@pytest.mark.parametrize(
    "value",
    [
        ph.argon2.using(type="D", memory_cost=64, rounds=1).hash(PASSWORD),
        ph.bcrypt.using(rounds=4).hash(PASSWORD).replace("$2b$", "$2x$"),
        ph.ldap_sha1.hash(PASSWORD),
        ph.django_bcrypt_sha256.using(rounds=4).hash(PASSWORD),
        "$6$" + "a" * 300,
        "$1$sälz$abc",
        "",
    ],
    ids=[
        "argon2d",
        "bcrypt_2x",
        "ldap_sha1",
        "django_bcrypt_sha256",
        "too_long",
        "not_ascii",
        "empty",
    ],
)
def test_formats_outside_the_list_are_not_identified(value: str, hasher: PasswordHasher) -> None:
    assert hasher.identify(value) is None


async def test_an_unusable_hash_never_verifies_and_costs_a_dummy_check() -> None:
    s = Settings(secret_key="k" * 32)
    hasher = PasswordHasher(
        memory_kib=s.argon2_memory_kib,
        time_cost=s.argon2_time_cost,
        parallelism=s.argon2_parallelism,
    )
    try:
        start = time.perf_counter()
        result = await hasher.verify(PASSWORD, "")
        unusable = time.perf_counter() - start
        start = time.perf_counter()
        await hasher.dummy_verify(PASSWORD)
        dummy = time.perf_counter() - start
    finally:
        hasher.close()
    assert (result.ok, result.new_hash) == (False, None)
    assert unusable > dummy / 3
