"""`PasswordHasher.identify` knows canonical bcrypt hashes without passlib's parser: it must
answer exactly as the parser does, for hashes of that shape and for near-misses."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from passlib import hash as ph

from api.security.passwords import _CANONICAL_BCRYPT, PasswordHasher

BCRYPT64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
NEAR_MISSES = ["$", "2", "x", "0", "9", "_", "+", "=", " ", "\u00e9", "\n", "."]


@pytest.fixture(scope="module")
def hasher() -> Iterator[PasswordHasher]:
    made = PasswordHasher(memory_kib=64, time_cost=1, parallelism=1)
    yield made
    made.close()


def agrees(hasher: PasswordHasher, candidate: str) -> None:
    """The fast answer is the parser's, and the fast path only takes hashes the parser takes
    as they are (none it would "repair", with a warning, for stray padding bits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert hasher.identify(candidate) == hasher._parse(candidate)
    if _CANONICAL_BCRYPT.fullmatch(candidate) is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert hasher._parse(candidate) == "bcrypt"


def _b64_run(length: int, last: str) -> st.SearchStrategy[str]:
    """`length` bcrypt-base64 characters ending in one of `last` (padding bits clear) or in
    any character, or a run one or two characters off that length."""
    exact = st.builds(
        str.__add__,
        st.text(BCRYPT64, min_size=length - 1, max_size=length - 1),
        st.one_of(st.sampled_from(last), st.sampled_from(BCRYPT64)),
    )
    return st.one_of(exact, st.text(BCRYPT64, min_size=length - 2, max_size=length + 1))


salts = _b64_run(22, ".Oeu")
checksums = _b64_run(31, ".CGKOSWaeimquy26")
bcrypt_shaped = st.builds(
    lambda ident, cost, salt, checksum: f"${ident}${cost:02d}${salt}{checksum}",
    st.sampled_from(["2a", "2b", "2y", "2x", "2", "3b"]),
    st.integers(0, 40),
    salts,
    checksums,
)


@settings(max_examples=1000, deadline=None)
@given(bcrypt_shaped)
@example(ph.bcrypt.using(rounds=4).hash("Moved1n!x"))
@example(ph.bcrypt.using(rounds=4, ident="2a").hash("Moved1n!x"))
@example("$2y$31$" + "a" * 21 + "O" + "b" * 30 + "6")
def test_canonical_bcrypt_hashes_are_identified_as_the_parser_does(
    hasher: PasswordHasher, candidate: str
) -> None:
    agrees(hasher, candidate)


@settings(max_examples=500, deadline=None)
@given(bcrypt_shaped, st.integers(0, 70), st.sampled_from(NEAR_MISSES))
def test_near_miss_bcrypt_hashes_are_identified_as_the_parser_does(
    hasher: PasswordHasher, candidate: str, position: int, piece: str
) -> None:
    at = position % (len(candidate) + 1)
    agrees(hasher, candidate[:at] + piece + candidate[at:])


def test_bcrypt_hashes_of_every_accepted_ident_take_the_fast_path(hasher: PasswordHasher) -> None:
    for ident in ("2a", "2b", "2y"):
        made = ph.bcrypt.using(rounds=4, ident=ident).hash("Moved1n!x")
        assert _CANONICAL_BCRYPT.fullmatch(made) is not None
        assert hasher.identify(made) == "bcrypt"


def test_every_ident_cost_and_final_character_is_identified_as_the_parser_does(
    hasher: PasswordHasher,
) -> None:
    """Exhaustive on what the fast path looks at: the ident, the cost, and the characters
    that carry padding bits (the last of the salt and of the checksum)."""
    salt, checksum = "abcdefghijklmnopqrstu", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
    for ident in ("2", "2a", "2b", "2x", "2y", "2z", "3b", "2A"):
        for cost in [*(f"{c:02d}" for c in range(100)), "4", "004", "1a"]:
            agrees(hasher, f"${ident}${cost}${salt}O{checksum}C")
    for last in BCRYPT64:
        agrees(hasher, f"$2b$10${salt}{last}{checksum}C")
        agrees(hasher, f"$2b$10${salt}O{checksum}{last}")
