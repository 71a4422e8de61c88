"""The one error catalogue.

`Reason` values are wire names: clients and the REST envelopes depend on them, so a member is
never renamed. Services raise `AmendError`; only the GraphQL and REST edges translate it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    MISSING_API_KEY = "MISSING_API_KEY"
    INVALID_API_KEY = "INVALID_API_KEY"
    ORIGIN_NOT_ALLOWED = "ORIGIN_NOT_ALLOWED"
    ORIGIN_REQUIRED = "ORIGIN_REQUIRED"
    INVALID_ENDPOINT = "INVALID_ENDPOINT"
    MISSING_TOKEN = "MISSING_TOKEN"
    INVALID_TOKEN = "INVALID_TOKEN"
    SESSION_REVOKED = "SESSION_REVOKED"
    USER_NOT_FOUND = "USER_NOT_FOUND"
    TOKEN_EXPIRED = "TOKEN_EXPIRED"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
    NOT_OWNER = "NOT_OWNER"
    PLAN_REQUIRED = "PLAN_REQUIRED"
    RATE_LIMITED = "RATE_LIMITED"
    UNSUPPORTED_CONTENT_TYPE = "UNSUPPORTED_CONTENT_TYPE"
    EMPTY_BODY = "EMPTY_BODY"
    MISSING_UNIQUE_ID = "MISSING_UNIQUE_ID"
    INVALID_STRATEGY = "INVALID_STRATEGY"
    RECORD_NOT_FOUND = "RECORD_NOT_FOUND"
    REQUIRED_FIELD_MISSING = "REQUIRED_FIELD_MISSING"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    INVALID_FIELD = "INVALID_FIELD"
    FIELD_NOT_ALLOWED = "FIELD_NOT_ALLOWED"
    EMPTY_UPDATE = "EMPTY_UPDATE"
    PASSWORD_POLICY = "PASSWORD_POLICY"
    INVALID_EMAIL = "INVALID_EMAIL"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    USERNAME_TAKEN = "USERNAME_TAKEN"
    VERSION_CONFLICT = "VERSION_CONFLICT"
    INVALID_CODE = "INVALID_CODE"
    UNSUPPORTED_HASH = "UNSUPPORTED_HASH"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"


Field = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request: what (reason), why (message), where (field path)."""

    reason: Reason
    message: str
    field: Field | None = None


class Unavailable(Exception):
    """The request cannot be served right now (no database connection came free in time).

    Not a client error: raised by the store, it is answered by each edge as the catalogue's
    `SERVICE_UNAVAILABLE` (`answer()`), with `Retry-After`."""

    retry_after = 1

    @classmethod
    def answer(cls) -> AmendError:
        """What the caller is told: the catalogue entry, in the API's own envelope."""
        return AmendError(
            Reason.SERVICE_UNAVAILABLE,
            "the service is busy; retry shortly",
            retry_after=cls.retry_after,
        )


class TransientConflict(Exception):
    """The database refused a transaction it may accept on a retry (a serialization failure
    or a deadlock). Nothing was written; callers retry a bounded number of times."""


class AmendError(Exception):
    """A failure the caller can act on. Carries one or more problems.

    `retry_after` (seconds) is set for `RATE_LIMITED` and `SERVICE_UNAVAILABLE`.
    """

    def __init__(
        self,
        reason: Reason,
        message: str,
        *,
        field: Sequence[str] | None = None,
        retry_after: int | None = None,
        problems: Iterable[Problem] = (),
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field: Field | None = tuple(field) if field is not None else None
        self.retry_after = retry_after
        extra = tuple(problems)
        self.problems: tuple[Problem, ...] = extra or (Problem(reason, message, self.field),)

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> AmendError:
        """Raise several input problems at once (the first one names the error)."""
        first = problems[0]
        return cls(first.reason, first.message, field=first.field, problems=problems)

    def __repr__(self) -> str:
        return f"AmendError({self.reason.value!r}, {self.message!r}, field={self.field!r})"


def payload_too_large(limit: int) -> AmendError:
    """The answer to a request body over `limit` bytes (refused before any route runs)."""
    return AmendError(Reason.PAYLOAD_TOO_LARGE, f"the request body is larger than {limit} bytes")
