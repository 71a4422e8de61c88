"""The reusable parts of the OpenAPI document: response descriptions and headers,
parameters, request bodies and security schemes."""

from __future__ import annotations

from collections.abc import Iterable

from api.core.policy import DEFAULT_ENDPOINT
from api.rest.openapi_schemas import ENDPOINT_NAME, HEX32, Schema, ref, string

# Security schemes, grouped by what they carry.
API_KEY = ("apiKeyQuery", "apiKeyHeader")
MASTER_KEY = ("masterKeyQuery", "masterKeyHeader")
TOKEN = ("bearerToken", "accessTokenHeader", "sessionCookie")

# Parameters (components/parameters), grouped the same way.
KEY_PARAMS = ("key", "X-API-Key")
MASTER_PARAMS = ("masterKey", "X-Master-Key")
TOKEN_PARAMS = ("Authorization", "X-Access-Token")


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
            {**string(ENDPOINT_NAME), "default": DEFAULT_ENDPOINT},
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
