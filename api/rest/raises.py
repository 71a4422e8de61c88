"""What each REST handler can answer besides success, declared on the handler itself.

`@raises(...)` names the catalogue reasons a handler's own code and the services it calls can
raise; `reasons_of(handler)` adds the ones every route may answer before or instead of its
handler (413, 503). The OpenAPI document turns them into each operation's statuses with the
same tables the envelopes use (`api.rest.errors`), so a reason added to a handler shows up
in the document with the status the client will really see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from api.core.errors import Reason

R = Reason
H = TypeVar("H", bound=Callable[..., object])

# Answered by the application around every route: a body over the limit, a busy database.
EVERY_ROUTE = frozenset({R.PAYLOAD_TOO_LARGE, R.SERVICE_UNAVAILABLE})
# `RequestContext.api_key_project()`: the project named by the API key, and its origin policy.
API_KEY = (R.MISSING_API_KEY, R.INVALID_API_KEY, R.ORIGIN_NOT_ALLOWED, R.ORIGIN_REQUIRED)
# `RequestContext.endpoint()`.
ENDPOINT = (R.INVALID_ENDPOINT,)
# `RequestContext.caller()`: the token, its session and user; any key sent must be valid.
CALLER = (
    R.MISSING_TOKEN,
    R.INVALID_TOKEN,
    R.SESSION_REVOKED,
    R.USER_NOT_FOUND,
    R.TOKEN_EXPIRED,
    R.INVALID_API_KEY,
    R.ORIGIN_NOT_ALLOWED,
    R.ORIGIN_REQUIRED,
)
# `api.rest.body`: reading a JSON (or text) body.
BODY = (R.UNSUPPORTED_CONTENT_TYPE, R.EMPTY_BODY, R.INVALID_FIELD)
# `api.rest.body.json_object`: a JSON object with only the allowed members.
JSON_OBJECT = (*BODY, R.FIELD_NOT_ALLOWED)
# Checking a record's document: `username`, `password` and the custom fields.
RECORD_CHANGE = (
    R.NOT_AN_OBJECT,
    R.TYPE_MISMATCH,
    R.REQUIRED_FIELD_MISSING,
    R.INVALID_FIELD,
    R.PASSWORD_POLICY,
    R.USERNAME_TAKEN,
)
# `accounts.sign_in`: wrong credentials, and the throttle on failures.
SIGN_IN = (R.INVALID_CREDENTIALS, R.RATE_LIMITED)

_RAISES: dict[Callable[..., object], frozenset[Reason]] = {}


def raises(*groups: Iterable[Reason]) -> Callable[[H], H]:
    """Declare the reasons the decorated handler can answer with."""

    def declare(handler: H) -> H:
        _RAISES[handler] = frozenset(r for group in groups for r in group)
        return handler

    return declare


def reasons_of(handler: Callable[..., object]) -> frozenset[Reason]:
    """Every reason an operation served by `handler` can answer with."""
    return _RAISES[handler] | EVERY_ROUTE
