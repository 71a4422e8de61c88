"""Reading JSON text without losing numbers.

orjson reads an integer beyond 64 bits as a float: `18446744073709551616` would be stored as
`1.8446744073709552e+19`, another number than the client sent. Text with a run of 19 or more
digits (rare: no 64-bit-safe integer needs more) is read by the standard parser instead, which
keeps every integer exact, so validation can refuse what cannot be stored (SPEC §5).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

# Every ASCII digit to "0", every other byte to " ": a run of 19 digits becomes a run of 19
# zeros, found by a substring search. (A regular expression's search for `\d{19}` costs four
# times as much on a small request body, where it runs on every request.)
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGITS = b"0" * 19

# The range orjson (storage, responses) writes exactly.
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(text: bytes | str) -> Any:
    """Parse JSON like orjson (no NaN or Infinity, strict UTF-8), integers kept exact.

    Raises `ValueError` (orjson's and the standard module's decode errors are both one).
    """
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if _LONG_DIGITS not in raw.translate(_DIGITS_AS_ZEROS):
        return orjson.loads(raw)
    return json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
