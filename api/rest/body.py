"""Request bodies of the REST routes, refused with the catalogue's reasons."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from api.core import jsontext
from api.core.errors import AmendError, Problem, Reason
from api.http.middleware import media_type, raw_header

JSON_TYPE = "application/json"
TEXT_TYPE = "text/plain"
_VERSION_TAG = re.compile(r'"([0-9]{1,18})"')


def _header(request: Request, name: bytes) -> str | None:
    """The first `name` header (lowercase), as `request.headers.get` reads it, without
    building the request's `Headers`."""
    value = raw_header(request.scope, name)
    return None if value is None else value.decode("latin-1")


async def _raw(request: Request, accepted: tuple[str, ...]) -> tuple[str, bytes]:
    kind = media_type(request.scope)
    if kind not in accepted:
        raise AmendError(
            Reason.UNSUPPORTED_CONTENT_TYPE,
            f"the body must be {' or '.join(repr(a) for a in accepted)}",
        )
    raw = await request.body()
    if not raw.strip():
        raise AmendError(Reason.EMPTY_BODY, "the request body is empty")
    return kind, raw


def _json(raw: bytes) -> Any:
    try:
        # NaN, Infinity and invalid UTF-8 are refused: JSON does not have them.
        return jsontext.loads(raw)
    except ValueError:
        raise AmendError(Reason.INVALID_FIELD, "the body is not valid JSON") from None


async def json_or_text(request: Request) -> Any:
    """§7.1: JSON, or text/plain that is JSON when it parses as JSON and a string otherwise."""
    kind, raw = await _raw(request, (JSON_TYPE, TEXT_TYPE))
    if kind == JSON_TYPE:
        return _json(raw)
    try:
        return jsontext.loads(raw)
    except ValueError:
        pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise AmendError(Reason.INVALID_FIELD, "the body is not valid UTF-8") from None
    if "\x00" in text:
        raise AmendError(Reason.INVALID_FIELD, "the body must not contain NUL characters")
    return text


async def json_object(request: Request, *, allowed: frozenset[str]) -> dict[str, Any]:
    """A JSON object whose members are all in `allowed` (others: FIELD_NOT_ALLOWED)."""
    _, raw = await _raw(request, (JSON_TYPE,))
    body = _json(raw)
    if not isinstance(body, dict):
        raise AmendError(Reason.INVALID_FIELD, "the body must be a JSON object")
    if not body.keys() <= allowed:
        raise AmendError.of(
            [
                Problem(Reason.FIELD_NOT_ALLOWED, f"'{key}' cannot be set here", (key,))
                for key in sorted(body.keys() - allowed)
            ]
        )
    return body


def optional_string(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise AmendError(Reason.INVALID_FIELD, f"'{key}' must be a string", field=(key,))
    return value


def if_match(request: Request) -> int | None:
    """The version an `If-Match` asks for; None when absent or `*`. A value that is not a
    strong ETag of a version can match nothing: VERSION_CONFLICT."""
    value = _header(request, b"if-match")
    if value is None or value.strip() == "*":
        return None
    tag = value.strip()
    # ASCII digits only, and few of them: `str.isdigit` also accepts "²", which `int` refuses,
    # and `int` refuses more than 4300 digits. No version is that large anyway.
    if (found := _VERSION_TAG.fullmatch(tag)) is not None:
        return int(found.group(1))
    raise AmendError(Reason.VERSION_CONFLICT, "If-Match does not match the record's ETag")
