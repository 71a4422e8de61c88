from __future__ import annotations

import httpx
import orjson
import pytest

BODY = orjson.dumps({"query": "{ __typename }"})


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
async def test_non_json_post_is_415_unsupported_content_type(
    client: httpx.AsyncClient, content_type: str
) -> None:
    r = await client.post("/graphql", content=BODY, headers={"content-type": content_type})
    assert r.status_code == 415
    assert r.json()["errors"][0]["extensions"] == {
        "code": "BAD_REQUEST",
        "reason": "UNSUPPORTED_CONTENT_TYPE",
    }


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8"])
async def test_json_post_is_served(client: httpx.AsyncClient, content_type: str) -> None:
    r = await client.post("/graphql", content=BODY, headers={"content-type": content_type})
    assert r.status_code == 200
    assert r.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        pytest.param("POST", {"content": b'{"query": '}, 400, id="body-not-json"),
        pytest.param("POST", {"content": b'"text"'}, 400, id="body-not-an-object"),
        pytest.param("POST", {"content": b'[{"query": "{ __typename }"}]'}, 400, id="batch"),
        pytest.param("POST", {"content": b'{"variables": {}}'}, 400, id="no-query"),
        pytest.param(
            "GET", {"params": {"query": "mutation { signOut }"}}, 400, id="mutation-over-get"
        ),
    ],
)
async def test_transport_errors_are_graphql_errors_in_json(
    client: httpx.AsyncClient, method: str, kwargs: dict[str, object], status: int
) -> None:
    headers = {"content-type": "application/json"} if method == "POST" else {}
    r = await client.request(method, "/graphql", headers=headers, **kwargs)  # type: ignore[arg-type]
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    [error] = r.json()["errors"]
    assert error["extensions"] == {"code": "BAD_REQUEST"}
    assert error["message"]
