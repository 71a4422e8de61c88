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
