"""Custom data (the `data` object of every user): its limits and its one validator.

`api.core.policy` re-exports all of it, with the other input validators.
"""

from __future__ import annotations

import json
import math
from typing import Final

import orjson

from api.core.errors import AmendError, Field, Reason
from api.core.jsontext import INT_MAX, INT_MIN

CUSTOM_DATA_MAX_BYTES: Final = 65536  # compact JSON, UTF-8
CUSTOM_DATA_MAX_DEPTH: Final = 16  # nested objects/arrays; the top-level object is depth 1
CUSTOM_DATA_MAX_KEY_LENGTH: Final = 256  # characters


def _invalid(message: str, field: Field) -> AmendError:
    return AmendError(Reason.INVALID_FIELD, message, field=field)


def validate_custom_data(data: object, *, field: Field) -> dict[str, object]:
    """Custom data: a JSON object within the limits (constants above).

    Not an object -> `NOT_AN_OBJECT`. Nesting deeper than `CUSTOM_DATA_MAX_DEPTH`, a key longer
    than `CUSTOM_DATA_MAX_KEY_LENGTH`, a non-string key, NaN or ±Infinity, a NUL character (or
    a lone surrogate) in a string or key, a value that is not JSON, or more than
    `CUSTOM_DATA_MAX_BYTES` of compact UTF-8 JSON -> `INVALID_FIELD`, with the field path of
    the offending member where there is one. Returns `data` itself.
    """
    if not isinstance(data, dict):
        raise AmendError(Reason.NOT_AN_OBJECT, "Custom data must be a JSON object.", field=field)
    size = _json_size(data, field, has_float=_walk(data, field))
    if size > CUSTOM_DATA_MAX_BYTES:
        raise _invalid(
            f"Custom data is too large: {size} bytes of JSON, at most {CUSTOM_DATA_MAX_BYTES}.",
            field,
        )
    return data


def _walk(data: dict[object, object], field: Field) -> bool:
    """Check every member (the first problem raises); whether a float was met.

    Iterative, so hostile nesting cannot blow the stack. Members are visited depth first, last
    member first; a member's path is built only when it is a container or has a problem."""
    has_float = False
    # (value, path of its parent, its key there, depth); the top object is its own parent.
    stack: list[tuple[object, Field, str | None, int]] = [(data, field, None, 1)]
    while stack:
        value, parent, key, depth = stack.pop()
        if isinstance(value, dict | list | tuple):
            path = parent if key is None else (*parent, key)
            if depth > CUSTOM_DATA_MAX_DEPTH:
                raise _invalid(
                    f"Custom data is nested too deeply (at most {CUSTOM_DATA_MAX_DEPTH} levels).",
                    path,
                )
            if isinstance(value, dict):
                for name in value:
                    _check_key(name, path)
                stack.extend((member, path, name, depth + 1) for name, member in value.items())
            else:
                stack.extend((item, path, str(i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str):
            if not _storable(value):
                raise _invalid(
                    "Custom data strings must not contain NUL characters or lone surrogates.",
                    (*parent, str(key)),
                )
        elif isinstance(value, float):
            has_float = True
            if not math.isfinite(value):
                raise _invalid(
                    "Custom data numbers must be finite (no NaN or Infinity).", (*parent, str(key))
                )
        elif isinstance(value, int):  # bool too
            if not INT_MIN <= value <= INT_MAX:
                raise _invalid(
                    "Custom data integers must fit in 64 bits (signed or unsigned).",
                    (*parent, str(key)),
                )
        elif value is not None:
            raise _invalid(
                f"Custom data holds a non-JSON value ({type(value).__name__}).",
                (*parent, str(key)),
            )
    return has_float


def _check_key(key: object, path: Field) -> None:
    if not isinstance(key, str):
        raise _invalid("Custom data keys must be strings.", path)
    if len(key) > CUSTOM_DATA_MAX_KEY_LENGTH:
        raise _invalid(
            f"A custom data key is too long (at most {CUSTOM_DATA_MAX_KEY_LENGTH} characters).",
            path,
        )
    if not _storable(key):
        raise _invalid("Custom data keys must not contain NUL characters or lone surrogates.", path)


def _json_size(data: dict[object, object], field: Field, *, has_float: bool) -> int:
    """Bytes of compact UTF-8 JSON (the standard module's spelling, `ensure_ascii=False`).

    Without floats orjson writes the very same bytes, 20x faster (tests/unit/
    test_custom_data_size.py compares them); floats are spelled differently (`1e+16` against
    `1e16`), so those go to the standard module."""
    if not has_float:
        try:
            return len(orjson.dumps(data))
        except orjson.JSONEncodeError:
            pass  # a type orjson does not take (a subclass, say): the standard module decides
    try:
        return len(
            json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
                "utf-8"
            )
        )
    except ValueError:  # e.g. an integer beyond Python's int-to-str digit limit
        raise _invalid("Custom data holds a number that cannot be stored.", field) from None


def _storable(s: str) -> bool:
    """No NUL (PostgreSQL text/jsonb refuses it) and valid UTF-8 (no lone surrogates)."""
    if "\x00" in s:
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
