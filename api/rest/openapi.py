"""The OpenAPI 3.1 document of the REST compatibility routes (SPEC §7), served at
`GET /openapi.json`.

It describes the routes exactly as the handlers answer. Each operation's error statuses are
derived, never listed: the reasons its handler declares (`api.rest.raises`), rendered through
the tables the envelopes use (`api.rest.errors`). The bodies of those statuses list the
reasons / codes behind them from the same tables (`api.rest.openapi_schemas`).
tests/rest/test_openapi_fuzz.py fuzzes the running service against this document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from api import __version__
from api.core.errors import Reason
from api.rest import ce, me, user_v1
from api.rest.errors import ce_status, me_status, user_v1_code
from api.rest.openapi_components import (
    API_KEY,
    KEY_PARAMS,
    MASTER_KEY,
    MASTER_PARAMS,
    TOKEN,
    TOKEN_PARAMS,
    credentials_object,
    error_description,
    json_body,
    one_of_each,
    parameters,
    params,
    response,
    response_headers,
    security_schemes,
)
from api.rest.openapi_schemas import Schema, closed_object, nullable_string, ref, schemas, string
from api.rest.raises import reasons_of

OPENAPI_VERSION = "3.1.0"
# Statuses whose answers say when to try again.
RETRY_STATUSES = (429, 503)


@dataclass(frozen=True, slots=True)
class Api:
    """One reproduced API: its schema-name prefix, the HTTP status of a reason, the handlers."""

    prefix: str
    status: Callable[[Reason], int]
    handlers: tuple[Callable[..., object], ...]

    def statuses(self, handler: Callable[..., object]) -> list[int]:
        return sorted({self.status(reason) for reason in reasons_of(handler)})

    def error_statuses(self) -> list[int]:
        return sorted({s for handler in self.handlers for s in self.statuses(handler)})


CE = Api("Ce", ce_status, (ce.read, ce.update, ce.create, ce.login))
USER_V1 = Api("UserV1", lambda r: user_v1_code(r) // 100, (user_v1.update, user_v1.login))
ME = Api("Me", me_status, (me.read, me.update))


def errors(api: Api, handler: Callable[..., object], max_body_bytes: int) -> dict[str, Schema]:
    """The error responses of an operation served by `handler`."""
    out: dict[str, Schema] = {}
    for status in api.statuses(handler):
        headers = (
            {"Retry-After": ref("headers", "Retry-After")} if status in RETRY_STATUSES else None
        )
        schema = ref("schemas", f"{api.prefix}Error{status}")
        out[str(status)] = response(error_description(status, max_body_bytes), schema, headers)
    return out


# §7.1 ---------------------------------------------------------------------------------------

OWNER_OR_MASTER = one_of_each(API_KEY, (*TOKEN, *MASTER_KEY))
RECORD_OR_DOCUMENT = {"anyOf": [ref("schemas", "Record"), ref("schemas", "Document")]}
ETAG = {"ETag": ref("headers", "ETag")}
NEW_SESSION = {
    **ETAG,
    "Authorization": ref("headers", "Authorization"),
    "Set-Cookie": ref("headers", "Set-Cookie"),
}
ACCESS = params(*KEY_PARAMS, *MASTER_PARAMS, *TOKEN_PARAMS)


def ce_read(limit: int) -> Schema:
    return {
        "operationId": "ceReadRecord",
        "summary": "Read a record (its owner, or the master key)",
        "tags": ["record"],
        "security": OWNER_OR_MASTER,
        "parameters": [*params("uniqueId", "dataOnly"), *ACCESS],
        "responses": {
            "200": response(
                "The record; with `dataOnly=true`, its document", RECORD_OR_DOCUMENT, ETAG
            ),
            **errors(CE, ce.read, limit),
        },
    }


def ce_update(limit: int) -> Schema:
    cleared = {
        "description": "Present when the user changed the password: "
        "every session was revoked and the cookie is cleared.",
        "required": False,
        "schema": string(),
    }
    return {
        "operationId": "ceUpdateRecord",
        "summary": "Update a record with a strategy (its owner, or the master key)",
        "tags": ["record"],
        "security": OWNER_OR_MASTER,
        "parameters": [*params("uniqueId", "strategy", "dataOnly", "If-Match"), *ACCESS],
        "requestBody": json_body({"description": "Any JSON value."}, text_too=True),
        "responses": {
            "200": response(
                "The updated record; with `dataOnly=true`, its document",
                RECORD_OR_DOCUMENT,
                {**ETAG, "Set-Cookie": cleared},
            ),
            **errors(CE, ce.update, limit),
        },
    }


def ce_session(limit: int, *, signing_up: bool) -> Schema:
    """Sign-up (201, a new record) or sign-in (200): both start a session."""
    body = credentials_object()
    if signing_up:
        body["description"] = "`username`, `password` and any custom fields."
    record = "The new record" if signing_up else "The record"
    status = "201" if signing_up else "200"
    return {
        "operationId": "ceSignUp" if signing_up else "ceSignIn",
        "summary": "Create a record (sign up) and start its session"
        if signing_up
        else "Sign in to an endpoint",
        "tags": ["record"],
        "security": one_of_each(API_KEY),
        "parameters": params(*KEY_PARAMS),
        "requestBody": json_body(body, text_too=True),
        "responses": {
            status: response(
                f"{record}; the access token is in `Authorization`",
                ref("schemas", "Record"),
                NEW_SESSION,
            ),
            **errors(CE, ce.create if signing_up else ce.login, limit),
        },
    }


def ce_paths(limit: int) -> dict[str, Schema]:
    """§7.1: `/1/ce/{endpoint}` (GET, PUT, POST) and `/1/ce/{endpoint}/login` (POST)."""
    record = {
        "parameters": params("endpoint"),
        "get": ce_read(limit),
        "put": ce_update(limit),
        "post": ce_session(limit, signing_up=True),
    }
    login = {"parameters": params("endpoint"), "post": ce_session(limit, signing_up=False)}
    return {"/1/ce/{endpoint}": record, "/1/ce/{endpoint}/login": login}


# §7.2 ---------------------------------------------------------------------------------------


def user_v1_update(method: str, limit: int) -> Schema:
    return {
        "operationId": f"userV1Update{method.capitalize()}",
        "summary": "Change the email address and/or the password; signs every session out",
        "tags": ["credentials"],
        "security": one_of_each(TOKEN),
        "parameters": params(*TOKEN_PARAMS, *KEY_PARAMS),
        "requestBody": json_body(
            closed_object({"eml": nullable_string(), "pwd": nullable_string()}, required=())
        ),
        "responses": {
            "200": response(
                "Changed; every token of the user is now invalid",
                ref("schemas", "UserV1Ok"),
                {"Set-Cookie": ref("headers", "Clear-Cookie")},
            ),
            **errors(USER_V1, user_v1.update, limit),
        },
    }


def user_v1_paths(limit: int) -> dict[str, Schema]:
    """§7.2: `/api/user/v1/update` (PUT, POST) and `/api/user/v1/login` (POST)."""
    login = {
        "operationId": "userV1Login",
        "summary": "Sign in with email (or username) and password",
        "tags": ["credentials"],
        "security": one_of_each(API_KEY),
        "parameters": params(*KEY_PARAMS, "loginEndpoint"),
        "requestBody": json_body(closed_object({"eml": string(), "pwd": string()})),
        "responses": {
            "200": response("Signed in", ref("schemas", "UserV1Token")),
            **errors(USER_V1, user_v1.login, limit),
        },
    }
    return {
        "/api/user/v1/update": {
            "put": user_v1_update("put", limit),
            "post": user_v1_update("post", limit),
        },
        "/api/user/v1/login": {"post": login},
    }


# §7.3 ---------------------------------------------------------------------------------------


def me_paths(limit: int) -> dict[str, Schema]:
    """§7.3: `/me` (GET, PATCH)."""
    ok = response("The caller's profile and sessions", ref("schemas", "MeOk"), ETAG)
    profile = closed_object(
        {
            "first_name": nullable_string(),
            "last_name": nullable_string(),
            "username": string(minLength=1),
            "phone_number": nullable_string(),
            "image_url": nullable_string(),
        },
        required=(),
    )
    read = {
        "operationId": "meRead",
        "summary": "The caller's profile",
        "tags": ["profile"],
        "security": one_of_each(TOKEN),
        "parameters": params(*TOKEN_PARAMS, *KEY_PARAMS),
        "responses": {"200": ok, **errors(ME, me.read, limit)},
    }
    update = {
        "operationId": "meUpdate",
        "summary": "Change profile fields (absent: unchanged, null: cleared)",
        "tags": ["profile"],
        "security": one_of_each(TOKEN),
        "parameters": params("If-Match", *TOKEN_PARAMS, *KEY_PARAMS),
        "requestBody": json_body({**profile, "minProperties": 1}),
        "responses": {"200": ok, **errors(ME, me.update, limit)},
    }
    return {"/me": {"get": read, "patch": update}}


def openapi_document(
    *, cookie_name: str = "access_token", max_body_bytes: int = 1_048_576
) -> dict[str, Any]:
    """The whole document, for a service with this cookie name and body limit."""
    apis: Iterable[Api] = (CE, USER_V1, ME)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Amend REST compatibility API",
            "version": __version__,
            "description": "The record (§7.1), credentials (§7.2) and profile (§7.3) APIs "
            "that Amend reproduces, with their own envelopes and error codes. "
            "The GraphQL API is at `/graphql`.",
        },
        "tags": [
            {"name": "record", "description": "§7.1: records of an authentication endpoint"},
            {"name": "credentials", "description": "§7.2: email and password"},
            {"name": "profile", "description": "§7.3: the signed-in user's profile"},
        ],
        "paths": {
            **ce_paths(max_body_bytes),
            **user_v1_paths(max_body_bytes),
            **me_paths(max_body_bytes),
        },
        "components": {
            "schemas": schemas({api.prefix: api.error_statuses() for api in apis}),
            "parameters": parameters(),
            "headers": response_headers(cookie_name),
            "securitySchemes": security_schemes(cookie_name),
        },
    }
