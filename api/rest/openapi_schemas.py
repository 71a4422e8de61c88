"""JSON Schemas of the REST bodies (SPEC §7): the helpers that build them, each API's
envelopes and records, and the error bodies of each status, whose reasons and codes come from
the tables the envelopes use (`api.rest.errors`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from api.core.errors import Reason
from api.rest.errors import ce_status, user_v1_code

Schema = dict[str, Any]

HEX32 = "^[0-9a-f]{32}$"
USER_ID = "^user_[0-9a-f]{32}$"
SIGNIN_ID = "^signin_[0-9a-f]{32}$"
TIMESTAMP_MS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
TIMESTAMP_S = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
ENDPOINT_NAME = "^[a-z0-9][a-z0-9_-]{0,62}$"


# Schema helpers -----------------------------------------------------------------------------


def ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def string(pattern: str | None = None, **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if pattern is not None:
        schema["pattern"] = pattern
    return schema


def nullable_string() -> Schema:
    return {"type": ["string", "null"]}


def closed_object(properties: dict[str, Schema], required: Iterable[str] | None = None) -> Schema:
    """An object with exactly these members (all of them required unless `required` is given)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }


def array_of(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def reasons_with(to_wire: Callable[[Reason], int], wire: int) -> list[str]:
    """The reasons an API renders as `wire` (a status or code; fallbacks included)."""
    return [reason.value for reason in Reason if to_wire(reason) == wire]


# §7.1 record API ----------------------------------------------------------------------------


def ce_error_schema(status: int) -> Schema:
    """`{"status": N, "error": "<REASON>", "message": "…"}`"""
    return closed_object(
        {
            "status": {"const": status},
            "error": {"enum": reasons_with(ce_status, status)},
            "message": string(),
        }
    )


def document_schema() -> Schema:
    """A user's document: `username` and the custom fields; never the password."""
    return {
        "type": "object",
        "properties": {"username": string(minLength=1)},
        "required": ["username"],
        "not": {"required": ["password"]},
        "description": "`username` and the custom fields; the password is write-only.",
    }


def record_schema() -> Schema:
    return closed_object(
        {
            "uniqueId": string(HEX32),
            "data": ref("schemas", "Document"),
            "createdAt": string(TIMESTAMP_MS),
            "updatedAt": string(TIMESTAMP_MS),
        }
    )


# §7.2 credentials API -----------------------------------------------------------------------


def user_v1_codes(status: int) -> list[int]:
    return sorted({user_v1_code(r) for r in Reason if user_v1_code(r) // 100 == status})


def user_v1_error_schema(status: int) -> Schema:
    """`{"code": NNNNN, "message": "…", "result": null}`; the HTTP status is `code // 100`."""
    return closed_object(
        {"code": {"enum": user_v1_codes(status)}, "message": string(), "result": {"type": "null"}}
    )


def user_v1_ok_schema(result: Schema) -> Schema:
    return closed_object({"code": {"const": 0}, "message": {"const": ""}, "result": result})


# §7.3 profile API ---------------------------------------------------------------------------


def problem_schema(codes: list[str]) -> Schema:
    return closed_object({"code": {"enum": codes}, "message": string(), "field": nullable_string()})


def me_error_schema(status: int) -> Schema:
    """`data` and `session` null, the problems in `errors`. The first problem names the status,
    later ones (several invalid fields at once) may carry any reason. (`prefixItems` could pin
    the first one, but Schemathesis 4 rewrites it into an invalid schema.)"""
    return closed_object(
        {
            "status": {"const": status},
            "message": string(),
            "data": {"type": "null"},
            "session": {"type": "null"},
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": problem_schema([reason.value for reason in Reason]),
            },
        }
    )


def me_user_schema() -> Schema:
    """The twelve keys of `data`, as `envelopes.me_user` renders them."""
    return closed_object(
        {
            "id": string(USER_ID),
            "first_name": nullable_string(),
            "last_name": nullable_string(),
            "username": string(minLength=1),
            "email": nullable_string(),
            "phone_number": nullable_string(),
            "image_url": nullable_string(),
            "two_factor_enabled": {"type": "boolean"},
            "email_verified": {"type": "boolean"},
            "phone_verified": {"type": "boolean"},
            "created_at": string(TIMESTAMP_S),
            "updated_at": string(TIMESTAMP_S),
        }
    )


def signin_schema() -> Schema:
    return closed_object(
        {"id": string(SIGNIN_ID), "user_id": string(USER_ID), "created_at": string(TIMESTAMP_S)}
    )


def attempt_schema() -> Schema:
    return closed_object(
        {
            "id": string("^[0-9]+$"),
            "identifier": string(),
            "succeeded": {"type": "boolean"},
            "reason": nullable_string(),
            "created_at": string(TIMESTAMP_S),
        }
    )


def me_session_schema() -> Schema:
    return closed_object(
        {
            "signin_attempts": array_of(ref("schemas", "SignInAttempt")),
            "signins": array_of(ref("schemas", "SignIn")),
            "signup_attempts": array_of(ref("schemas", "SignInAttempt")),
            "active_signin": {"anyOf": [ref("schemas", "SignIn"), {"type": "null"}]},
        }
    )


def me_ok_schema() -> Schema:
    return closed_object(
        {
            "status": {"const": 200},
            "message": {"const": ""},
            "data": ref("schemas", "MeUser"),
            "session": ref("schemas", "MeSession"),
            "errors": {"type": "array", "maxItems": 0},
        }
    )


# Error bodies, by API: `{prefix}Error{status}` ------------------------------------------------

ERROR_SCHEMAS: dict[str, Callable[[int], Schema]] = {
    "Ce": ce_error_schema,
    "UserV1": user_v1_error_schema,
    "Me": me_error_schema,
}


def schemas(error_statuses: Mapping[str, Iterable[int]]) -> dict[str, Schema]:
    """Every schema component; `error_statuses` names the error statuses of each API."""
    out: dict[str, Schema] = {
        "Document": document_schema(),
        "Record": record_schema(),
        "UserV1Ok": user_v1_ok_schema({"type": "null"}),
        "UserV1Token": user_v1_ok_schema(closed_object({"token": string(minLength=1)})),
        "MeOk": me_ok_schema(),
        "MeUser": me_user_schema(),
        "MeSession": me_session_schema(),
        "SignIn": signin_schema(),
        "SignInAttempt": attempt_schema(),
    }
    for api, statuses in error_statuses.items():
        out.update({f"{api}Error{s}": ERROR_SCHEMAS[api](s) for s in statuses})
    return out
