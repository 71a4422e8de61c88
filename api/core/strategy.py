"""The update strategy engine (SPEC §5), shared by every route that updates a user document.

The document model
------------------
The *document* of a user in an authentication endpoint is one JSON object::

    {"username": "jane", "password": <KEPT>, "colour": "blue", ...}

- `username` is the account's username column;
- `password` is write-only: the service stores only its hash, so the clear text of the current
  password is never known. In the *current* document it is therefore the sentinel `KEPT`,
  meaning "the stored password, unchanged";
- every other key is a custom field, stored in the user's `data` column and never touching an
  account column (`data.email` is not the account email).

An update applies a `Strategy` to (current document, change):

- `force` (default): the change replaces the document, whatever its type;
- `merge`: JSON Merge Patch (RFC 7396); both sides must be objects. A patch that does not name
  `password` leaves the `KEPT` sentinel in place, so the password survives a merge;
- `replace`: the change replaces the document, but must have the same JSON type.

`check_auth_document` then enforces the post-conditions of §5 and splits the result into an
`AuthDocument`: `password is None` means "kept" (the sentinel survived); a string is a new
candidate password, which the service compares with the stored hash (equal = unchanged) before
running the password policy.

Why a sentinel rather than `None` or a placeholder string: `None` is what a merge patch uses
to *remove* a member, and any string could be a real password a client sends. The sentinel is
a private object no JSON decoder can produce, so it cannot be forged by a request and cannot be
confused with a value; if it ever reached a serializer it would fail loudly instead of leaking.

Everything here is pure: no function mutates its arguments. Results may share unchanged
leaves (lists, nested objects that a patch did not touch) with the inputs; treat them as
immutable values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Final, final

from api.core.errors import AmendError, Problem, Reason

__all__ = [
    "KEPT",
    "STRATEGIES",
    "AuthDocument",
    "Strategy",
    "apply_strategy",
    "auth_document",
    "check_auth_document",
    "json_type",
    "merge_patch",
    "parse_strategy",
]

DATA_FIELD: Final = ("data",)


class Strategy(StrEnum):
    FORCE = "force"
    MERGE = "merge"
    REPLACE = "replace"


def parse_strategy(value: str | None) -> Strategy:
    """A strategy from a wire value (`force`, `MERGE`, ...); absent means `force`.

    Unknown values fail with `INVALID_STRATEGY`.
    """
    if value is None:
        return Strategy.FORCE
    try:
        return Strategy(value.strip().lower())
    except ValueError:
        allowed = ", ".join(s.value for s in Strategy)
        raise AmendError(
            Reason.INVALID_STRATEGY,
            f"Unknown update strategy {value!r}; use one of: {allowed}.",
            field=("strategy",),
        ) from None


@final
class _Kept:
    """The type of `KEPT`. One instance only; survives copy, deepcopy and pickling."""

    __slots__ = ()
    _instance: ClassVar[_Kept | None] = None

    def __new__(cls) -> _Kept:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "KEPT"

    def __copy__(self) -> _Kept:
        return self

    def __deepcopy__(self, memo: object) -> _Kept:
        return self

    def __reduce__(self) -> str:
        return "KEPT"

    def __bool__(self) -> bool:
        return True


KEPT: Final = _Kept()
"""Stands for "the stored password, unchanged" inside a document."""


def merge_patch(target: object, patch: object) -> object:
    """RFC 7396 JSON Merge Patch: `MergePatch(target, patch)`.

    A non-object patch replaces the target; an object patch onto a non-object target starts
    from `{}`; a `null` (None) member removes that member; object members merge recursively.
    Inputs are never mutated: every object on a patched path is a new dict. Implemented with an
    explicit stack, so deeply nested patches cannot exhaust the Python recursion limit.
    """
    if not isinstance(patch, dict):
        return patch
    root: dict[object, object] = dict(target) if isinstance(target, dict) else {}
    stack: list[tuple[dict[object, object], dict[object, object]]] = [(root, patch)]
    while stack:
        out, part = stack.pop()
        for name, value in part.items():
            if value is None:
                out.pop(name, None)
            elif isinstance(value, dict):
                current = out.get(name)
                child: dict[object, object] = dict(current) if isinstance(current, dict) else {}
                out[name] = child
                stack.append((child, value))
            else:
                out[name] = value
    return root


def json_type(value: object) -> str:
    """The JSON type name of a decoded JSON value.

    `bool` is "boolean" (not "number"); `int` and `float` are "number"; `KEPT` stands for a
    password, so it is a "string". Anything that is not a JSON value raises `TypeError`.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str) or value is KEPT:
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _force(current: object, change: object) -> object:
    return change


def _merge(current: object, change: object) -> object:
    if not isinstance(current, dict):
        raise AmendError(
            Reason.NOT_AN_OBJECT,
            f"The merge strategy needs the stored document to be a JSON object, "
            f"not {_a(json_type(current))}.",
            field=DATA_FIELD,
        )
    if not isinstance(change, dict):
        raise AmendError(
            Reason.NOT_AN_OBJECT,
            f"The merge strategy needs a JSON object, not {_a(json_type(change))}.",
            field=DATA_FIELD,
        )
    return merge_patch(current, change)


def _replace(current: object, change: object) -> object:
    old, new = json_type(current), json_type(change)
    if old != new:
        raise AmendError(
            Reason.TYPE_MISMATCH,
            f"The replace strategy keeps the JSON type: the stored document is {_a(old)}, "
            f"the new content is {_a(new)}.",
            field=DATA_FIELD,
        )
    return change


def _a(type_name: str) -> str:
    return f"an {type_name}" if type_name[0] in "aeiou" else f"a {type_name}"


STRATEGIES: Final[dict[Strategy, Callable[[object, object], object]]] = {
    Strategy.FORCE: _force,
    Strategy.MERGE: _merge,
    Strategy.REPLACE: _replace,
}


def apply_strategy(strategy: Strategy, current: object, change: object) -> object:
    """Apply `strategy` to the current document; returns the new document (inputs untouched).

    Fails with `NOT_AN_OBJECT` (merge onto or with a non-object) or `TYPE_MISMATCH` (replace
    with another JSON type), both on the field path `("data",)`.
    """
    return STRATEGIES[Strategy(strategy)](current, change)


@dataclass(frozen=True)
class AuthDocument:
    """A checked document of an authentication endpoint, split into its parts."""

    username: str
    password: str | None  # None = kept (the KEPT sentinel survived the update)
    data: dict[str, object]  # custom fields, without username/password


def _missing(value: object) -> bool:
    return value is None or value == ""


def _member_problem(name: str, value: object, valid: bool) -> Problem | None:
    """What is wrong with the document's `username` or `password`, if anything."""
    if _missing(value):
        return Problem(
            Reason.REQUIRED_FIELD_MISSING,
            f"The document must contain a non-empty `{name}`.",
            ("data", name),
        )
    if not valid:
        return Problem(
            Reason.INVALID_FIELD,
            f"`{name}` must be a string, not {_a(json_type_or_other(value))}.",
            ("data", name),
        )
    return None


def check_auth_document(doc: object) -> AuthDocument:
    """Enforce the post-conditions of §5 on a document after a strategy was applied.

    - not an object -> `NOT_AN_OBJECT` (`("data",)`);
    - `username` / `password` missing, null or "" -> `REQUIRED_FIELD_MISSING`
      (`("data", "username")` / `("data", "password")`);
    - `username` not a string, `password` neither a string nor `KEPT` -> `INVALID_FIELD`.
    Problems with both fields are reported together.
    """
    if not isinstance(doc, dict):
        raise AmendError(
            Reason.NOT_AN_OBJECT,
            f"The user document must be a JSON object, not {_a(json_type_or_other(doc))}.",
            field=DATA_FIELD,
        )
    username = doc.get("username")
    password = doc.get("password")
    problems = [
        p
        for p in (
            _member_problem("username", username, isinstance(username, str)),
            _member_problem("password", password, isinstance(password, str) or password is KEPT),
        )
        if p is not None
    ]
    if problems:
        raise AmendError.of(problems)
    assert isinstance(username, str)
    assert isinstance(password, str) or password is KEPT
    data = {str(k): v for k, v in doc.items() if k not in ("username", "password")}
    return AuthDocument(
        username=username,
        password=password if isinstance(password, str) else None,
        data=data,
    )


def json_type_or_other(value: object) -> str:
    """`json_type`, or the Python type name for a value that is not JSON (for messages)."""
    try:
        return json_type(value)
    except TypeError:
        return type(value).__name__


def auth_document(username: str, data: Mapping[str, object]) -> dict[str, object]:
    """The current document of a user: `{"username": …, "password": KEPT, **data}`.

    Stored custom data never holds `username` or `password`; should it, the account values win.
    """
    custom = {k: v for k, v in data.items() if k not in ("username", "password")}
    return {"username": username, "password": KEPT, **custom}
