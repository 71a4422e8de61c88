"""Origins and CORS on the REST routes (the GraphQL route has its own tests)."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import PASSWORD, ProjectKeys

APP = "https://app.example.com"
EVIL = "https://evil.example.net"


def preflight_headers(origin: str, method: str = "PUT") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, authorization",
    }


@pytest.fixture
async def locked(make_project_fn: object) -> ProjectKeys:
    return await make_project_fn("locked", origins=[APP], allow_no_origin=False)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/1/ce/users", "PUT"),
        ("/1/ce/users/login", "POST"),
        ("/api/user/v1/update", "POST"),
        ("/api/user/v1/login", "POST"),
        ("/me", "PATCH"),
    ],
)
async def test_preflight_answers_a_listed_origin_with_credentials(
    client: httpx.AsyncClient, locked: ProjectKeys, path: str, method: str
) -> None:
    r = await client.options(
        path, params={"key": locked.api_key}, headers=preflight_headers(APP, method)
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-credentials"] == "true"
    assert method in r.headers["access-control-allow-methods"]
    assert "authorization" in r.headers["access-control-allow-headers"]
    assert "Origin" in r.headers["vary"]


async def test_preflight_gives_nothing_to_an_unlisted_origin(
    client: httpx.AsyncClient, locked: ProjectKeys
) -> None:
    r = await client.options(
        "/1/ce/users", params={"key": locked.api_key}, headers=preflight_headers(EVIL)
    )
    assert "access-control-allow-origin" not in r.headers
    assert r.status_code == 403


async def test_preflight_with_a_key_answers_only_that_projects_origins(
    client: httpx.AsyncClient, locked: ProjectKeys, make_project_fn: object
) -> None:
    other = await make_project_fn("other", origins=["https://other.example.com"])  # type: ignore[operator]
    r = await client.options(
        "/1/ce/users",
        params={"key": other.api_key},
        headers=preflight_headers(APP),
    )
    assert "access-control-allow-origin" not in r.headers


async def test_preflight_of_me_names_no_project_and_accepts_any_listed_origin(
    client: httpx.AsyncClient, locked: ProjectKeys
) -> None:
    r = await client.options("/me", headers=preflight_headers(APP, "PATCH"))
    assert r.headers["access-control-allow-origin"] == APP


async def test_actual_response_to_a_listed_origin_exposes_etag(
    client: httpx.AsyncClient, locked: ProjectKeys
) -> None:
    r = await client.post(
        "/1/ce/users",
        params={"key": locked.api_key},
        json={"username": "ann", "password": PASSWORD},
        headers={"Origin": APP},
    )
    assert r.status_code == 201
    assert r.headers["access-control-allow-origin"] == APP
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "etag" in r.headers["access-control-expose-headers"].lower()


async def _token(client: httpx.AsyncClient, keys: ProjectKeys) -> str:
    r = await client.post(
        "/1/ce/users",
        params={"key": keys.api_key},
        json={"username": "ann", "password": PASSWORD},
        headers={"Origin": APP},
    )
    assert r.status_code == 201, r.text
    return r.headers["authorization"].removeprefix("Bearer ")


@pytest.mark.parametrize(
    ("origin", "ce", "v1", "me", "reason"),
    [
        (EVIL, 403, 40302, 403, "ORIGIN_NOT_ALLOWED"),
        (None, 403, 40302, 403, "ORIGIN_REQUIRED"),
    ],
    ids=["test_unlisted_origin_is_refused_everywhere", "test_missing_origin_is_refused_everywhere"],
)
async def test_origin_policy_applies_to_every_rest_route(
    client: httpx.AsyncClient,
    locked: ProjectKeys,
    origin: str | None,
    ce: int,
    v1: int,
    me: int,
    reason: str,
) -> None:
    token = await _token(client, locked)
    headers = {"Authorization": f"Bearer {token}"}
    if origin is not None:
        headers["Origin"] = origin
    r = await client.get(
        "/1/ce/users", params={"key": locked.api_key, "uniqueId": "0" * 32}, headers=headers
    )
    assert (r.status_code, r.json()["error"]) == (ce, reason)
    r = await client.post("/api/user/v1/update", json={"pwd": "N3w-secret-Pw"}, headers=headers)
    assert (r.status_code, r.json()["code"]) == (v1 // 100, v1)
    r = await client.get("/me", headers=headers)
    assert r.status_code == me
    assert r.json()["errors"][0]["code"] == reason
