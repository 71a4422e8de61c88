"""One line of an import file (SPEC §10): parsed and validated as sign-up and `updateMe` do.

The validators are those of `api.core.policy`; this module only maps the line's fields onto
them and gathers every problem of the line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from api.core import ids
from api.core.errors import AmendError, Problem, Reason
from api.core.policy import (
    canonical_username,
    normalize_email,
    validate_custom_data,
    validate_image_url,
    validate_name,
    validate_password,
    validate_phone,
    validate_username,
)
from api.services.accounts import check_reserved_keys

FIELDS = frozenset(
    {
        "unique_id",
        "username",
        "email",
        "email_verified",
        "first_name",
        "last_name",
        "phone_number",
        "image_url",
        "data",
        "created_at",
        "password",
        "password_hash",
    }
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Fields that hold a secret: audit events name them, never their values.
SECRET_FIELDS = frozenset({"password", "password_hash"})


class Line:
    """A valid line, normalized. `values` holds the columns it sets, `fields` names what the
    line set (for updates and audit); `password` is plain text still to be hashed (never
    spooled to disk: hashed first). `unique_id` is "" until one is generated, when the line
    gives none. `row` is its insert bound for the database and `record` its spool record
    (`import_write.spooled`), both made ahead where they can be; a line made from a record
    reads its values and fields from it only when they are asked for."""

    __slots__ = (
        "_fields",
        "_values",
        "email_key",
        "given_id",
        "number",
        "password",
        "record",
        "row",
        "unique_id",
        "username_key",
    )

    def __init__(
        self,
        number: int,
        unique_id: str,
        values: dict[str, Any],
        fields: list[str],
        password: str | None = None,
        given_id: bool = False,
    ) -> None:
        self.number, self.unique_id, self.given_id = number, unique_id, given_id
        self._values: dict[str, Any] | None = values
        self._fields: list[str] | None = fields
        self.password = password
        self.username_key: str = values["username_canonical"]
        self.email_key: str | None = values.get("email_canonical")
        self.row: list[Any] | None = None
        self.record: bytes | None = None

    @classmethod
    def recorded(
        cls,
        number: int,
        unique_id: str,
        given_id: bool,
        username_key: str,
        email_key: str | None,
        record: bytes,
    ) -> Line:
        line = cls.__new__(cls)
        line.number, line.unique_id, line.given_id = number, unique_id, given_id
        line._values = line._fields = None
        line.password, line.row, line.record = None, None, record
        line.username_key, line.email_key = username_key, email_key
        return line

    def _load(self) -> None:
        assert self.record is not None
        body = orjson.loads(self.record.partition(b"\t")[2])
        self._fields, self._values = body[3], body[4]

    @property
    def values(self) -> dict[str, Any]:
        if self._values is None:
            self._load()
        assert self._values is not None
        return self._values

    @property
    def fields(self) -> list[str]:
        if self._fields is None:
            self._load()
        assert self._fields is not None
        return self._fields


def _keep(problems: list[Problem], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except AmendError as error:
        problems.extend(error.problems)
        return None


def _invalid(problems: list[Problem], name: str, message: str) -> None:
    problems.append(Problem(Reason.INVALID_FIELD, message, (name,)))


def parse_created_at(value: object, problems: list[Problem]) -> int | None:
    if not isinstance(value, str):
        _invalid(problems, "created_at", "created_at must be an ISO 8601 date-time string.")
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _invalid(problems, "created_at", "created_at is not an ISO 8601 date-time.")
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # no offset given: UTC, as in the exports
    return (parsed - _EPOCH) // timedelta(milliseconds=1)  # exact: no float on the way


def _check_secret(
    present: dict[str, Any],
    values: dict[str, Any],
    problems: list[Problem],
    identify: Callable[[str], str | None],
    username: str | None,
    email: str | None,
) -> str | None:
    """Check `password` / `password_hash`; the plain password still to hash, if any."""
    password: str | None = present.get("password")
    if "password_hash" in present:
        stored = present["password_hash"]
        if password is not None:
            _invalid(problems, "password_hash", "Give at most one of password and password_hash.")
        elif not isinstance(stored, str) or identify(stored) is None:
            problems.append(
                Problem(
                    Reason.UNSUPPORTED_HASH,
                    "The password hash is in no supported format (see the README).",
                    ("password_hash",),
                )
            )
        values["password_hash"] = stored
    if password is not None and not problems:
        _keep(
            problems,
            validate_password,
            password,
            username=username,
            email=email,
            field=("password",),
        )
    return password


_NOT_JSON = (Problem(Reason.INVALID_FIELD, "The line is not valid JSON."),)
_NOT_OBJECT = (Problem(Reason.NOT_AN_OBJECT, "A line must be a JSON object."),)
_PROFILE = (
    ("first_name", validate_name),
    ("last_name", validate_name),
    ("phone_number", validate_phone),
    ("image_url", validate_image_url),
)


def check_line(
    number: int, raw: bytes, identify: Callable[[str], str | None]
) -> Line | list[Problem]:
    """Validate one line: the `Line`, or every problem it has. `identify` names the scheme of
    an acceptable password hash."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return list(_NOT_JSON)
    if not isinstance(doc, dict):
        return list(_NOT_OBJECT)
    problems: list[Problem] = []
    if not FIELDS.issuperset(doc):
        for name in sorted(set(doc) - FIELDS):
            _invalid(problems, name, f"'{name}' is not a field of the import format.")
    present = {k: v for k, v in doc.items() if v is not None and k in FIELDS}
    username = _keep(problems, validate_username, doc.get("username"), field=("username",))
    given_id = "unique_id" in present
    unique_id = present.get("unique_id")
    if given_id and not (isinstance(unique_id, str) and ids.is_hex_id(unique_id)):
        _invalid(problems, "unique_id", "unique_id must be 32 lowercase hexadecimal characters.")
    email = None
    if "email" in present:
        email = _keep(problems, normalize_email, present["email"], field=("email",))
    values: dict[str, Any] = {}
    for name, validate in _PROFILE:
        if name in present:
            values[name] = _keep(problems, validate, present[name], field=(name,))
    _check_rest(present, values, problems)
    password = _check_secret(present, values, problems, identify, username, email)
    if problems:
        return problems
    assert isinstance(username, str)
    values["username"] = username
    values["username_canonical"] = canonical_username(username)
    if email is not None:
        # `normalize_email` returns the normalized address, whose canonical key is its
        # lowercase form (what `canonical_email` computes, without validating it twice).
        values["email"] = email
        values["email_canonical"] = email.lower()
    fields = sorted(present)
    if given_id:
        fields.remove("unique_id")
    return Line(number, str(unique_id) if given_id else "", values, fields, password, given_id)


def _check_rest(present: dict[str, Any], values: dict[str, Any], problems: list[Problem]) -> None:
    """`email_verified`, `data` and `created_at`."""
    if "email_verified" in present:
        values["email_verified"] = present["email_verified"]
        if not isinstance(present["email_verified"], bool):
            _invalid(problems, "email_verified", "email_verified must be true or false.")
    if "data" in present:
        data = _keep(problems, validate_custom_data, present["data"], field=("data",))
        if data is not None:
            problems.extend(check_reserved_keys(data, ("data",)))
        values["data"] = data
    if "created_at" in present:
        values["created_at"] = parse_created_at(present["created_at"], problems)
