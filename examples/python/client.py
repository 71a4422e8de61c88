"""Sign in, change the profile, and read it back with the `gql` client.

pip install "gql[httpx]"
python examples/python/client.py http://127.0.0.1:8000 <API key> <username> <password>
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from gql import Client, gql
from gql.transport.httpx import HTTPXAsyncTransport

OPERATIONS = Path(__file__).resolve().parent.parent / "operations"


def operation(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text()


async def main(base: str, api_key: str, username: str, password: str) -> None:
    anonymous = HTTPXAsyncTransport(url=f"{base}/graphql", headers={"X-API-Key": api_key})
    async with Client(transport=anonymous) as session:
        result = await session.execute(
            gql(operation("signIn")),
            variable_values={"input": {"identifier": username, "password": password}},
        )
    payload = result["signIn"]
    if payload["errors"]:
        raise SystemExit(f"sign-in failed: {payload['errors']}")
    signed_in = HTTPXAsyncTransport(
        url=f"{base}/graphql", headers={"Authorization": f"Bearer {payload['token']}"}
    )
    async with Client(transport=signed_in) as session:
        updated = await session.execute(
            gql(operation("updateMe")),
            variable_values={"input": {"lastName": "Hopper", "data": {"lang": "en"}}},
        )
        me = await session.execute(gql(operation("me")))
    print(json.dumps({"errors": updated["updateMe"]["errors"], "me": me["me"]}))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
