"""Identifiers: 32 lowercase hex characters, shown with a type prefix on the wire."""

from __future__ import annotations

import re
import secrets

USER_PREFIX = "user_"
SESSION_PREFIX = "signin_"
_HEX32 = re.compile(r"[0-9a-f]{32}")


def new_hex_id() -> str:
    return secrets.token_hex(16)


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
