"""The email rule's fast path for plain ASCII addresses gives exactly what `email_validator`
gives: the same acceptance and the same normalized form, on addresses of the shape it handles
and on near-misses of every kind (which it must hand over to `email_validator`)."""

from __future__ import annotations

import string

from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from api.core import policy

ATEXT = string.ascii_letters + string.digits + "!#$%&'*+-/=?^_`{|}~"
LDH = string.ascii_letters + string.digits + "-"
# Characters and pieces that break the simple shape somewhere.
NEAR_MISSES = [
    ".",
    "..",
    "-",
    "--",
    "@",
    " ",
    '"',
    "\\",
    "(",
    "<",
    ">",
    ",",
    ";",
    ":",
    "[",
    "]",
    "xn--",
    "\u00e9",
    "\u0301",
    "\u200b",
    "\uff0e",
    "\uff20",
    "\u0131",
    "\u212a",
    "1",
    "_",
    "\t",
]
ROLES = ["postmaster", "Abuse", "INFO", "WebMaster", "news"]
TLDS = ["com", "ORG", "io", "test", "local", "localhost", "onion", "arpa", "invalid", "x"]


def outcome(fn: object, address: str) -> tuple[str, str]:
    try:
        return ("ok", fn(address))  # type: ignore[operator]
    except EmailNotValidError:
        return ("invalid", "")


def reference(address: str) -> str:
    return str(validate_email(address, check_deliverability=False).normalized)


atoms = st.text(ATEXT, min_size=1, max_size=12)
local_parts = st.one_of(
    st.lists(atoms, min_size=1, max_size=4).map(".".join), st.sampled_from(ROLES)
)
labels = st.text(LDH, min_size=1, max_size=12)
tlds = st.one_of(st.sampled_from(TLDS), st.text(string.ascii_letters, min_size=1, max_size=8))
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]), st.lists(labels, min_size=1, max_size=4), tlds
)
addresses = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)


@settings(max_examples=1500, deadline=None)
@given(addresses)
@example("Jane.Doe@EXAMPLE.COM")
@example("Postmaster@Example.com")
@example("a@b-.com")
@example("a@-b.com")
@example("a@ab--c.com")
@example("a@xn--bcher-kva.example")
@example("a@example.test")
@example("a@" + "a" * 64 + ".com")
@example("a" * 240 + "@example.com")
@example("a@" + ".".join(["a" * 60] * 4) + ".com")
def test_the_fast_path_agrees_with_email_validator_on_simple_addresses(address: str) -> None:
    assert outcome(policy._email_normalized, address) == outcome(reference, address)


@settings(max_examples=1500, deadline=None)
@given(
    addresses, st.lists(st.tuples(st.integers(0, 300), st.sampled_from(NEAR_MISSES)), max_size=3)
)
def test_the_fast_path_agrees_with_email_validator_on_near_misses(
    address: str, edits: list[tuple[int, str]]
) -> None:
    for position, piece in edits:
        at = position % (len(address) + 1)
        address = address[:at] + piece + address[at:]
    assert outcome(policy._email_normalized, address) == outcome(reference, address)


def test_every_check_of_an_address_uses_the_one_rule() -> None:
    """Sign-up, `updateMe`, imports (`normalize_email`) and look-ups (`canonical_email`)."""
    assert policy.normalize_email(" Jane@Example.COM ", field=("email",)) == "Jane@example.com"
    assert policy.canonical_email("Jane@Example.COM") == "jane@example.com"
    assert policy.normalize_email("Postmaster@Example.com", field=("email",)) == (
        "postmaster@example.com"
    )
