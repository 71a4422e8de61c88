"""Every reason has an entry in every wire format's table."""

from __future__ import annotations

import ast
from pathlib import Path

import orjson

from api.core.errors import AmendError, Problem, Reason, Unavailable, payload_too_large
from api.graphql.errors import GRAPHQL_CODES, GRAPHQL_STATUS, PAYLOAD, error_response

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
    "SERVICE_UNAVAILABLE",
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
        "PAYLOAD_TOO_LARGE",
        "SERVICE_UNAVAILABLE",
    }


def test_reasons_answered_with_their_own_http_status_follow_the_spec() -> None:
    # SPEC §8: "(HTTP 415 / 400)", "(HTTP 413)", "(HTTP 503)"; all are top-level errors.
    assert GRAPHQL_STATUS == {
        Reason.UNSUPPORTED_CONTENT_TYPE: 415,
        Reason.EMPTY_BODY: 400,
        Reason.PAYLOAD_TOO_LARGE: 413,
        Reason.SERVICE_UNAVAILABLE: 503,
    }
    assert all(GRAPHQL_CODES[reason] is not PAYLOAD for reason in GRAPHQL_STATUS)


def test_a_refusal_before_execution_is_one_top_level_error_from_the_catalogue() -> None:
    response = error_response(payload_too_large(2048))
    assert response.status_code == 413
    assert orjson.loads(response.body) == {
        "errors": [
            {
                "message": "the request body is larger than 2048 bytes",
                "extensions": {"code": "PAYLOAD_TOO_LARGE", "reason": "PAYLOAD_TOO_LARGE"},
            }
        ]
    }
    busy = error_response(Unavailable.answer())
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert orjson.loads(busy.body)["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


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


API = Path(__file__).resolve().parents[2] / "api"
CATALOGUE = {"core/errors.py", "graphql/errors.py"}
# GraphQL's own request and validation errors (a document that breaks a rule, a body
# Strawberry cannot read) carry the code BAD_REQUEST and no reason: they are not Amend reasons.
GRAPHQL_REQUEST_ERRORS = {"graphql/rules.py", "graphql/view.py"}


def test_wire_codes_are_spelled_only_in_the_catalogue() -> None:
    wire = {r.value for r in Reason} | {c for c in GRAPHQL_CODES.values() if c}
    found: dict[str, set[str]] = {}
    for path in API.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in wire:
                found.setdefault(str(path.relative_to(API)), set()).add(node.value)
    outside = {m: codes for m, codes in found.items() if m not in CATALOGUE}
    assert set(outside) <= GRAPHQL_REQUEST_ERRORS, outside
    assert set().union(*outside.values()) <= {"BAD_REQUEST"}
