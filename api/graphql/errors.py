"""The one place where core errors become GraphQL: payload `errors` or a top-level error."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import orjson
from graphql import GraphQLError
from starlette.responses import Response

from api.core.errors import AmendError, Reason, Unavailable
from api.graphql.types import UserError

PAYLOAD = None
# Reason -> extensions.code of a top-level error, or PAYLOAD (an entry of the payload's errors).
GRAPHQL_CODES: dict[Reason, str | None] = {
    Reason.MISSING_API_KEY: "FORBIDDEN",
    Reason.INVALID_API_KEY: "FORBIDDEN",
    Reason.ORIGIN_NOT_ALLOWED: "FORBIDDEN",
    Reason.ORIGIN_REQUIRED: "FORBIDDEN",
    Reason.INVALID_ENDPOINT: "BAD_REQUEST",
    Reason.MISSING_TOKEN: "UNAUTHENTICATED",
    Reason.INVALID_TOKEN: "UNAUTHENTICATED",
    Reason.SESSION_REVOKED: "UNAUTHENTICATED",
    Reason.USER_NOT_FOUND: "UNAUTHENTICATED",
    Reason.TOKEN_EXPIRED: "UNAUTHENTICATED",
    Reason.INVALID_CREDENTIALS: PAYLOAD,
    Reason.REAUTHENTICATION_REQUIRED: PAYLOAD,
    Reason.NOT_OWNER: "FORBIDDEN",
    Reason.PLAN_REQUIRED: "FORBIDDEN",
    Reason.RATE_LIMITED: "RATE_LIMITED",
    Reason.UNSUPPORTED_CONTENT_TYPE: "BAD_REQUEST",
    Reason.EMPTY_BODY: "BAD_REQUEST",
    Reason.MISSING_UNIQUE_ID: "BAD_REQUEST",
    Reason.INVALID_STRATEGY: "BAD_REQUEST",
    Reason.RECORD_NOT_FOUND: PAYLOAD,  # top-level BAD_REQUEST in `record` and `revokeSession`
    Reason.REQUIRED_FIELD_MISSING: PAYLOAD,
    Reason.NOT_AN_OBJECT: PAYLOAD,
    Reason.TYPE_MISMATCH: PAYLOAD,
    Reason.INVALID_FIELD: PAYLOAD,
    Reason.FIELD_NOT_ALLOWED: PAYLOAD,
    Reason.EMPTY_UPDATE: PAYLOAD,
    Reason.PASSWORD_POLICY: PAYLOAD,
    Reason.INVALID_EMAIL: PAYLOAD,
    Reason.EMAIL_TAKEN: PAYLOAD,
    Reason.USERNAME_TAKEN: PAYLOAD,
    Reason.VERSION_CONFLICT: PAYLOAD,
    Reason.INVALID_CODE: PAYLOAD,
    Reason.UNSUPPORTED_HASH: "BAD_REQUEST",  # import only: no request raises it
    Reason.PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
    Reason.SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
}

# Reason -> the HTTP status of the whole GraphQL response, for the reasons SPEC §8 answers with
# a status of their own ("(HTTP n)"): refused before execution, or not served at all. Every
# other reason travels in a 200 (or the 400 of a request that failed before execution).
GRAPHQL_STATUS: dict[Reason, int] = {
    Reason.UNSUPPORTED_CONTENT_TYPE: 415,
    Reason.EMPTY_BODY: 400,
    Reason.PAYLOAD_TOO_LARGE: 413,
    Reason.SERVICE_UNAVAILABLE: 503,
}


class AmendGraphQLError(GraphQLError):
    """A top-level error we raised on purpose: never masked."""


def top_level(
    error: AmendError, *, code: str | None = None, path: Sequence[str | int] | None = None
) -> AmendGraphQLError:
    extensions: dict[str, object] = {
        "code": code or GRAPHQL_CODES[error.reason] or "BAD_REQUEST",
        "reason": error.reason.value,
    }
    if error.retry_after is not None:
        extensions["retryAfter"] = error.retry_after
    return AmendGraphQLError(error.message, path=path, extensions=extensions)


def mark_response(response: object, error: AmendError) -> None:
    """Give the HTTP response the status and `Retry-After` the catalogue names for `error`."""
    if isinstance(response, Response):
        response.status_code = GRAPHQL_STATUS.get(error.reason, response.status_code)
        if error.retry_after is not None:
            response.headers["Retry-After"] = str(error.retry_after)


def error_response(error: AmendError) -> Response:
    """A whole answer holding one top-level error, for requests refused before GraphQL runs."""
    body = {"errors": [top_level(error).formatted]}
    response = Response(orjson.dumps(body), media_type="application/json")
    mark_response(response, error)
    return response


def to_payload_errors(error: AmendError) -> list[UserError]:
    """Payload errors for input problems; anything else is re-raised as a top-level error."""
    if GRAPHQL_CODES[error.reason] is not PAYLOAD:
        raise top_level(error)
    return [UserError.from_problem(p) for p in error.problems]


def should_mask(error: GraphQLError) -> bool:
    """Mask unexpected exceptions; keep our errors and GraphQL's own validation errors."""
    original = error.original_error
    return original is not None and not isinstance(original, GraphQLError | Unavailable)


# graphql-core quotes the offending input in coercion messages ("…, found: {'password': …}",
# "String cannot represent a non string value: …"): that input may be a password or a token.
_QUOTED_INPUT = re.compile(
    r"(?:[,;.]?\s*(?:[Ff]ound:|but encountered error\b)|(?<=value)(?<!invalid value):\s).*",
    re.S,
)
_LOGGER = logging.getLogger("api.graphql")


def redact_input(error: GraphQLError) -> None:
    """Drop quoted input values from an error message (in place: it is also the response's)."""
    cut = _QUOTED_INPUT.search(error.message)
    if cut is not None:
        kept = error.message[: cut.start()].rstrip(" ,;.")
        error.message = kept if kept.endswith("?") else kept + "."


def log_error(error: GraphQLError) -> None:
    """Log the message only: `str(error)` would print the query text around its location."""
    unexpected = should_mask(error)
    _LOGGER.log(
        logging.ERROR if unexpected else logging.INFO,
        "graphql error: %s",
        error.message,
        extra={"graphql_path": error.path},
        exc_info=error.original_error if unexpected else None,
    )
