"""Every reason has an entry in every wire format's table."""

from __future__ import annotations

from api.core.errors import AmendError, Problem, Reason
from api.graphql.errors import GRAPHQL_CODES, PAYLOAD

SPEC_REASONS = [
    "MISSING_API_KEY",
    "INVALID_API_KEY",
    "ORIGIN_NOT_ALLOWED",
    "ORIGIN_REQUIRED",
    "INVALID_ENDPOINT",
    "MISSING_TOKEN",
    "INVALID_TOKEN",
    "SESSION_REVOKED",
    "USER_NOT_FOUND",
    "TOKEN_EXPIRED",
    "INVALID_CREDENTIALS",
    "REAUTHENTICATION_REQUIRED",
    "NOT_OWNER",
    "PLAN_REQUIRED",
    "RATE_LIMITED",
    "UNSUPPORTED_CONTENT_TYPE",
    "EMPTY_BODY",
    "MISSING_UNIQUE_ID",
    "INVALID_STRATEGY",
    "RECORD_NOT_FOUND",
    "REQUIRED_FIELD_MISSING",
    "NOT_AN_OBJECT",
    "TYPE_MISMATCH",
    "INVALID_FIELD",
    "FIELD_NOT_ALLOWED",
    "EMPTY_UPDATE",
    "PASSWORD_POLICY",
    "INVALID_EMAIL",
    "EMAIL_TAKEN",
    "USERNAME_TAKEN",
    "VERSION_CONFLICT",
    "INVALID_CODE",
    "UNSUPPORTED_HASH",
    "PAYLOAD_TOO_LARGE",
]


def test_catalogue_holds_exactly_the_spec_reasons() -> None:
    assert sorted(r.value for r in Reason) == sorted(SPEC_REASONS)


def test_every_reason_has_a_graphql_mapping() -> None:
    assert set(GRAPHQL_CODES) == set(Reason)
    assert set(GRAPHQL_CODES.values()) <= {
        PAYLOAD,
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "BAD_REQUEST",
        "RATE_LIMITED",
    }


def test_auth_failures_are_top_level_and_input_problems_are_payload() -> None:
    assert GRAPHQL_CODES[Reason.MISSING_TOKEN] == "UNAUTHENTICATED"
    assert GRAPHQL_CODES[Reason.NOT_OWNER] == "FORBIDDEN"
    assert GRAPHQL_CODES[Reason.PLAN_REQUIRED] == "FORBIDDEN"
    assert GRAPHQL_CODES[Reason.INVALID_ENDPOINT] == "BAD_REQUEST"
    for reason in (
        Reason.INVALID_CREDENTIALS,
        Reason.REAUTHENTICATION_REQUIRED,
        Reason.EMAIL_TAKEN,
    ):
        assert GRAPHQL_CODES[reason] is PAYLOAD


def test_error_with_several_problems_keeps_them_in_order() -> None:
    problems = [
        Problem(Reason.REQUIRED_FIELD_MISSING, "a", ("data", "username")),
        Problem(Reason.INVALID_FIELD, "b", ("data", "password")),
    ]
    error = AmendError.of(problems)
    assert error.reason is Reason.REQUIRED_FIELD_MISSING
    assert error.problems == tuple(problems)
