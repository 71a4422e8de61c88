"""Project keys. Only a SHA-256 digest of each key is stored.

Keys are 192-bit random strings, so a fast digest is enough (there is nothing to brute-force).
Keys are found by an index lookup on the digest: whatever timing that lookup shows concerns the
digest, which reveals nothing about a key, so a presented key is never compared byte by byte.
"""

from __future__ import annotations

import hashlib
import secrets

API_KEY_PREFIX = "ak_"
MASTER_KEY_PREFIX = "mk_"


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(24)


def new_master_key() -> str:
    return MASTER_KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
