"""The OpenAPI 3.1 document of the REST compatibility routes (SPEC §7), served at
`GET /openapi.json`.

It describes the routes exactly as the handlers answer: the statuses each operation can return,
the envelope of each API, and the reasons / codes behind every error status. Those lists come
from the tables in `api.rest.errors` (the ones the handlers use), so the document follows the
catalogue. tests/rest/test_openapi_fuzz.py fuzzes the running service against this document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from api import __version__
from api.core.errors import Reason
from api.rest.errors import ce_status, user_v1_code

Schema = dict[str, Any]

OPENAPI_VERSION = "3.1.0"

HEX32 = "^[0-9a-f]{32}$"
USER_ID = "^user_[0-9a-f]{32}$"
SIGNIN_ID = "^signin_[0-9a-f]{32}$"
TIMESTAMP_MS = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$"
TIMESTAMP_S = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
ENDPOINT_NAME = "^[a-z0-9][a-z0-9_-]{0,62}$"

# The error statuses each API can answer with (which operation answers which: see below).
CE_ERRORS = (400, 401, 403, 412, 413, 429)
USER_V1_ERRORS = (400, 401, 403, 409, 413, 429)
ME_ERRORS = (400, 401, 403, 409, 412, 413)

# Security schemes, grouped by what they carry.
API_KEY = ("apiKeyQuery", "apiKeyHeader")
MASTER_KEY = ("masterKeyQuery", "masterKeyHeader")
TOKEN = ("bearerToken", "accessTokenHeader", "sessionCookie")

# Parameters (components/parameters), grouped the same way.
KEY_PARAMS = ("key", "X-API-Key")
MASTER_PARAMS = ("masterKey", "X-Master-Key")
TOKEN_PARAMS = ("Authorization", "X-Access-Token")


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


# 503: no database connection came free in time (`routes.unavailable`) ------------------------

UNAVAILABLE = "SERVICE_UNAVAILABLE"


def unavailable_schemas() -> dict[str, Schema]:
    """The 503 of each API, in its envelope; not a catalogue reason."""
    return {
        "CeError503": closed_object(
            {"status": {"const": 503}, "error": {"const": UNAVAILABLE}, "message": string()}
        ),
        "UserV1Error503": closed_object(
            {"code": {"const": 50301}, "message": string(), "result": {"type": "null"}}
        ),
        "MeError503": closed_object(
            {
                "status": {"const": 503},
                "message": string(),
                "data": {"type": "null"},
                "session": {"type": "null"},
                "errors": {"type": "array", "minItems": 1, "items": problem_schema([UNAVAILABLE])},
            }
        ),
    }


def schemas() -> dict[str, Schema]:
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
    out.update({f"CeError{s}": ce_error_schema(s) for s in CE_ERRORS})
    out.update({f"UserV1Error{s}": user_v1_error_schema(s) for s in USER_V1_ERRORS})
    out.update({f"MeError{s}": me_error_schema(s) for s in ME_ERRORS})
    out.update(unavailable_schemas())
    return out


# Responses ----------------------------------------------------------------------------------


def error_description(status: int, max_body_bytes: int) -> str:
    return {
        400: "Invalid request: body, parameters, key, endpoint or record",
        401: "Not signed in: missing, invalid, revoked or expired token; wrong credentials; "
        "or a credential change without a recent sign-in",
        403: "Refused: API key missing or not accepted, origin not allowed, or plan too low",
        409: "Conflict: the value is already used by another account",
        412: "If-Match does not match the record's ETag (VERSION_CONFLICT)",
        413: f"The request body is larger than {max_body_bytes} bytes (PAYLOAD_TOO_LARGE)",
        429: "Too many attempts (RATE_LIMITED): retry after `Retry-After` seconds",
        503: "The service is busy (SERVICE_UNAVAILABLE): retry after `Retry-After` seconds",
    }[status]


def response_headers(cookie_name: str) -> dict[str, Schema]:
    return {
        "ETag": {
            "description": 'A strong ETag of the record\'s version: `"<version>"`.',
            "required": True,
            "schema": string('^"[0-9]+"$'),
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
        "Authorization": {
            "description": "`Bearer <access token>` of the new session.",
            "required": True,
            "schema": string("^Bearer [^ ]+$"),
        },
        "Set-Cookie": {
            "description": f"Sets the `{cookie_name}` session cookie "
            "(HttpOnly; SameSite=Lax; Path=/; Secure unless dev mode).",
            "required": True,
            "schema": string(),
        },
        "Clear-Cookie": {
            "description": f"Clears the `{cookie_name}` session cookie: every session of the "
            "user was revoked, sign in again.",
            "required": True,
            "schema": string(),
        },
    }


def response(description: str, schema: Schema, headers: dict[str, Schema] | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def error_responses(api: str, statuses: Iterable[int], max_body_bytes: int) -> dict[str, Schema]:
    """The error responses of one API (`Ce`, `UserV1` or `Me`) for these statuses, and the
    503 every operation may answer."""
    out: dict[str, Schema] = {}
    for status in (*statuses, 503):
        headers = {"Retry-After": ref("headers", "Retry-After")} if status in (429, 503) else None
        schema = ref("schemas", f"{api}Error{status}")
        out[str(status)] = response(error_description(status, max_body_bytes), schema, headers)
    return out


# Parameters, request bodies and security ----------------------------------------------------


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        "description": description,
    }


def header_param(name: str, description: str) -> Schema:
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": string(),
        "description": description,
    }


def parameters() -> dict[str, Schema]:
    return {
        "endpoint": {
            "name": "endpoint",
            "in": "path",
            "required": True,
            "schema": string(ENDPOINT_NAME),
            "description": "The authentication endpoint (a user pool), e.g. `users`.",
        },
        "key": query("key", string(), "The project's API key (or `X-API-Key`)."),
        "masterKey": query("masterKey", string(), "The project's master key (or `X-Master-Key`)."),
        "uniqueId": query("uniqueId", string(HEX32), "The record's unique id.", required=True),
        "dataOnly": query(
            "dataOnly",
            {"type": "boolean", "default": False},
            "`true`: the body is the stored document alone.",
        ),
        "strategy": query(
            "strategy",
            {"type": "string", "enum": ["force", "merge", "replace"], "default": "force"},
            "The update strategy (SPEC §5); case-insensitive.",
        ),
        "loginEndpoint": query(
            "endpoint",
            {**string(ENDPOINT_NAME), "default": "users"},
            "The authentication endpoint to sign in to.",
        ),
        "X-API-Key": header_param("X-API-Key", "The project's API key (or `?key=`)."),
        "X-Master-Key": header_param(
            "X-Master-Key", "The project's master key (or `?masterKey=`): overrides tokens."
        ),
        "X-Access-Token": header_param("X-Access-Token", "An access token (JWT)."),
        "Authorization": header_param(
            "Authorization", "`Bearer <access token>`; decides over the other token carriers."
        ),
        "If-Match": header_param(
            "If-Match",
            'The record\'s ETag (`"<version>"`) or `*`; any other value answers 412.',
        ),
    }


def params(*names: str) -> list[Schema]:
    return [ref("parameters", name) for name in names]


def security_schemes(cookie_name: str) -> dict[str, Schema]:
    def api_key(where: str, name: str, description: str) -> Schema:
        return {"type": "apiKey", "in": where, "name": name, "description": description}

    return {
        "apiKeyQuery": api_key("query", "key", "The project's API key."),
        "apiKeyHeader": api_key("header", "X-API-Key", "The project's API key."),
        "masterKeyQuery": api_key("query", "masterKey", "The project's master key (secret)."),
        "masterKeyHeader": api_key("header", "X-Master-Key", "The project's master key (secret)."),
        "bearerToken": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An access token in `Authorization: Bearer`.",
        },
        "accessTokenHeader": api_key("header", "X-Access-Token", "An access token (JWT)."),
        "sessionCookie": api_key("cookie", cookie_name, "The httpOnly session cookie."),
    }


def one_of_each(*groups: Iterable[str]) -> list[dict[str, list[str]]]:
    """Security requirements: one scheme from each group, every combination."""
    combos: list[list[str]] = [[]]
    for group in groups:
        combos = [[*combo, name] for combo in combos for name in group]
    return [{name: [] for name in combo} for combo in combos]


def json_body(schema: Schema, *, text_too: bool = False) -> Schema:
    content: Schema = {"application/json": {"schema": schema}}
    if text_too:
        content["text/plain"] = {
            "schema": string(
                minLength=1, description="JSON text; text that is not JSON is a JSON string."
            )
        }
    return {"required": True, "content": content}


def credentials_object() -> Schema:
    """`{"username", "password"}` of the record API: non-empty strings (other members pass)."""
    return {
        "type": "object",
        "properties": {"username": string(minLength=1), "password": string(minLength=1)},
        "required": ["username", "password"],
    }


# Operations ---------------------------------------------------------------------------------


def ce_paths(max_body_bytes: int) -> dict[str, Schema]:
    """§7.1: `/1/ce/{endpoint}` (GET, PUT, POST) and `/1/ce/{endpoint}/login` (POST)."""

    def errors(*statuses: int) -> dict[str, Schema]:
        return error_responses("Ce", statuses, max_body_bytes)

    owner_or_master = one_of_each(API_KEY, (*TOKEN, *MASTER_KEY))
    record_or_document = {"anyOf": [ref("schemas", "Record"), ref("schemas", "Document")]}
    etag = {"ETag": ref("headers", "ETag")}
    new_session = {
        **etag,
        "Authorization": ref("headers", "Authorization"),
        "Set-Cookie": ref("headers", "Set-Cookie"),
    }
    access = params(*KEY_PARAMS, *MASTER_PARAMS, *TOKEN_PARAMS)
    record = {
        "parameters": params("endpoint"),
        "get": {
            "operationId": "ceReadRecord",
            "summary": "Read a record (its owner, or the master key)",
            "tags": ["record"],
            "security": owner_or_master,
            "parameters": [*params("uniqueId", "dataOnly"), *access],
            "responses": {
                "200": response(
                    "The record; with `dataOnly=true`, its document", record_or_document, etag
                ),
                **errors(400, 401, 403, 413),
            },
        },
        "put": {
            "operationId": "ceUpdateRecord",
            "summary": "Update a record with a strategy (its owner, or the master key)",
            "tags": ["record"],
            "security": owner_or_master,
            "parameters": [*params("uniqueId", "strategy", "dataOnly", "If-Match"), *access],
            "requestBody": json_body({"description": "Any JSON value."}, text_too=True),
            "responses": {
                "200": response(
                    "The updated record; with `dataOnly=true`, its document",
                    record_or_document,
                    {
                        **etag,
                        "Set-Cookie": {
                            "description": "Present when the user changed the password: "
                            "every session was revoked and the cookie is cleared.",
                            "required": False,
                            "schema": string(),
                        },
                    },
                ),
                **errors(400, 401, 403, 412, 413, 429),
            },
        },
        "post": {
            "operationId": "ceSignUp",
            "summary": "Create a record (sign up) and start its session",
            "tags": ["record"],
            "security": one_of_each(API_KEY),
            "parameters": params(*KEY_PARAMS),
            "requestBody": json_body(
                {
                    **credentials_object(),
                    "description": "`username`, `password` and any custom fields.",
                },
                text_too=True,
            ),
            "responses": {
                "201": response(
                    "The new record; the access token is in `Authorization`",
                    ref("schemas", "Record"),
                    new_session,
                ),
                **errors(400, 403, 413),
            },
        },
    }
    login = {
        "parameters": params("endpoint"),
        "post": {
            "operationId": "ceSignIn",
            "summary": "Sign in to an endpoint",
            "tags": ["record"],
            "security": one_of_each(API_KEY),
            "parameters": params(*KEY_PARAMS),
            "requestBody": json_body(credentials_object(), text_too=True),
            "responses": {
                "200": response(
                    "The record; the access token is in `Authorization`",
                    ref("schemas", "Record"),
                    new_session,
                ),
                **errors(400, 401, 403, 413, 429),
            },
        },
    }
    return {"/1/ce/{endpoint}": record, "/1/ce/{endpoint}/login": login}


def user_v1_paths(max_body_bytes: int) -> dict[str, Schema]:
    """§7.2: `/api/user/v1/update` (PUT, POST) and `/api/user/v1/login` (POST)."""

    def errors(*statuses: int) -> dict[str, Schema]:
        return error_responses("UserV1", statuses, max_body_bytes)

    def update(method: str) -> Schema:
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
                **errors(400, 401, 403, 409, 413, 429),
            },
        }

    login = {
        "operationId": "userV1Login",
        "summary": "Sign in with email (or username) and password",
        "tags": ["credentials"],
        "security": one_of_each(API_KEY),
        "parameters": params(*KEY_PARAMS, "loginEndpoint"),
        "requestBody": json_body(closed_object({"eml": string(), "pwd": string()})),
        "responses": {
            "200": response("Signed in", ref("schemas", "UserV1Token")),
            **errors(400, 401, 403, 413, 429),
        },
    }
    return {
        "/api/user/v1/update": {"put": update("put"), "post": update("post")},
        "/api/user/v1/login": {"post": login},
    }


def me_paths(max_body_bytes: int) -> dict[str, Schema]:
    """§7.3: `/me` (GET, PATCH)."""

    def errors(*statuses: int) -> dict[str, Schema]:
        return error_responses("Me", statuses, max_body_bytes)

    ok = response(
        "The caller's profile and sessions",
        ref("schemas", "MeOk"),
        {"ETag": ref("headers", "ETag")},
    )
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
    return {
        "/me": {
            "get": {
                "operationId": "meRead",
                "summary": "The caller's profile",
                "tags": ["profile"],
                "security": one_of_each(TOKEN),
                "parameters": params(*TOKEN_PARAMS, *KEY_PARAMS),
                "responses": {"200": ok, **errors(400, 401, 403, 413)},
            },
            "patch": {
                "operationId": "meUpdate",
                "summary": "Change profile fields (absent: unchanged, null: cleared)",
                "tags": ["profile"],
                "security": one_of_each(TOKEN),
                "parameters": params("If-Match", *TOKEN_PARAMS, *KEY_PARAMS),
                "requestBody": json_body({**profile, "minProperties": 1}),
                "responses": {"200": ok, **errors(400, 401, 403, 409, 412, 413)},
            },
        }
    }


def openapi_document(
    *, cookie_name: str = "access_token", max_body_bytes: int = 1_048_576
) -> dict[str, Any]:
    """The whole document, for a service with this cookie name and body limit."""
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
            "schemas": schemas(),
            "parameters": parameters(),
            "headers": response_headers(cookie_name),
            "securitySchemes": security_schemes(cookie_name),
        },
    }
