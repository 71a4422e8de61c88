"""Identifiers: 32 lowercase hex characters, shown with a type prefix on the wire."""

from __future__ import annotations

import re
import secrets
import time

USER_PREFIX = "user_"
SESSION_PREFIX = "signin_"
_HEX32 = re.compile(r"[0-9a-f]{32}")


def new_hex_id() -> str:
    return secrets.token_hex(16)


def new_sorted_hex_ids(count: int, at_ms: int | None = None) -> list[str]:
    """Ids whose first 12 hex digits are the time in milliseconds (`at_ms`, or now) and the
    other 20 random (80 bits: unguessable, and unique in practice), like UUIDv7s: ids made one
    after the other sort together, so a bulk import appends to the unique_id index instead of
    writing a random page of it for every row."""
    ms = time.time_ns() // 1_000_000 if at_ms is None else at_ms
    stamp = f"{ms:012x}"
    randomness = secrets.token_hex(10 * count)
    return [stamp + randomness[i : i + 20] for i in range(0, 20 * count, 20)]


def is_hex_id(value: str) -> bool:
    return _HEX32.fullmatch(value) is not None


def user_id(unique_id: str) -> str:
    return USER_PREFIX + unique_id


def session_id(hex_id: str) -> str:
    return SESSION_PREFIX + hex_id


def parse_session_id(value: str) -> str | None:
    """The hex part of `signin_<hex>`, or None when `value` is not a session id."""
    if not value.startswith(SESSION_PREFIX):
        return None
    hex_id = value[len(SESSION_PREFIX) :]
    return hex_id if is_hex_id(hex_id) else None
