"""A schema extension registered on the app runs for every operation, whether the view
executes a known document directly or hands the request to Strawberry's full view."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from graphql import GraphQLResolveInfo
from strawberry.extensions import SchemaExtension

from api.app import create_app
from api.config import Settings
from api.services.container import Services
from tests.conftest import ProjectKeys
from tests.gql import UPDATE_ME, graphql_view, sign_up

ME = "query { me { username version } }"


def _probe(calls: list[str]) -> Callable[[], SchemaExtension]:
    """A factory for an extension that writes down each hook it sees, in order."""

    class Probe(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            calls.append("operation:start")
            yield
            calls.append("operation:end")

        def on_parse(self) -> Iterator[None]:
            calls.append("parse")
            yield

        def on_validate(self) -> Iterator[None]:
            calls.append("validate")
            yield

        def on_execute(self) -> Iterator[None]:
            calls.append("execute:start")
            yield
            calls.append("execute:end")

        def resolve(
            self,
            _next: Callable[..., Any],
            root: Any,
            info: GraphQLResolveInfo,
            *args: Any,
            **kw: Any,
        ) -> Any:
            calls.append(f"resolve:{info.field_name}")
            return _next(root, info, *args, **kw)

        def get_results(self) -> dict[str, Any]:
            calls.append("results")
            return {}

    return Probe


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
async def probed(
    settings: Settings, services: Services, calls: list[str]
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services, graphql_extensions=[_probe(calls)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def _hooks(fields: list[str]) -> list[str]:
    """Every hook of one operation, in Strawberry's order."""
    return [
        "operation:start",
        "parse",
        "validate",
        "execute:start",
        *(f"resolve:{name}" for name in fields),
        "execute:end",
        "operation:end",
        "results",
    ]


async def test_an_extension_runs_on_the_direct_path(
    probed: httpx.AsyncClient, project: ProjectKeys, calls: list[str]
) -> None:
    account = await sign_up(probed, project.api_key)
    headers = {"Authorization": f"Bearer {account.token}"}
    await probed.post("/graphql", json={"query": ME}, headers=headers)
    assert (ME, None) in graphql_view(probed).documents._valid  # so the next one runs directly
    calls.clear()
    response = await probed.post("/graphql", json={"query": ME}, headers=headers)
    assert response.json() == {"data": {"me": {"username": "jane", "version": 1}}}
    assert calls == _hooks(["me", "username", "version"])


async def test_an_extension_runs_on_a_direct_mutation(
    probed: httpx.AsyncClient, project: ProjectKeys, calls: list[str]
) -> None:
    account = await sign_up(probed, project.api_key)
    body = {"query": UPDATE_ME, "variables": {"input": {"firstName": "Ann"}}}
    headers = {"Authorization": f"Bearer {account.token}"}
    await probed.post("/graphql", json=body, headers=headers)
    assert (UPDATE_ME, None) in graphql_view(probed).documents._valid
    calls.clear()
    response = await probed.post("/graphql", json=body, headers=headers)
    assert response.json()["data"]["updateMe"]["user"]["firstName"] == "Ann"
    assert calls[:4] == ["operation:start", "parse", "validate", "execute:start"]
    assert "resolve:updateMe" in calls and "resolve:firstName" in calls
    assert calls[-3:] == ["execute:end", "operation:end", "results"]


@pytest.mark.parametrize("how", ["post-with-extensions", "get"])
async def test_an_extension_runs_on_the_full_pipeline(
    probed: httpx.AsyncClient, project: ProjectKeys, calls: list[str], how: str
) -> None:
    account = await sign_up(probed, project.api_key)
    headers = {"Authorization": f"Bearer {account.token}"}
    calls.clear()
    if how == "get":
        response = await probed.get("/graphql", params={"query": ME}, headers=headers)
    else:
        # A body key the direct path does not take.
        body = {"query": ME, "extensions": None}
        response = await probed.post("/graphql", json=body, headers=headers)
    assert response.json() == {"data": {"me": {"username": "jane", "version": 1}}}
    assert calls == _hooks(["me", "username", "version"])


async def test_variables_that_do_not_coerce_run_the_hooks_alike_on_both_paths(
    probed: httpx.AsyncClient, project: ProjectKeys, calls: list[str]
) -> None:
    # A variable that does not coerce fails before execution on either path: 400 under
    # graphql-response+json, no data, the hooks up to validation run.
    account = await sign_up(probed, project.api_key)
    headers = {
        "Authorization": f"Bearer {account.token}",
        "Accept": "application/graphql-response+json",
    }
    body: dict[str, Any] = {"query": UPDATE_ME, "variables": {"input": {"firstName": 5}}}
    answers = []
    for extra in ({}, {"extensions": None}):
        calls.clear()
        response = await probed.post("/graphql", json={**body, **extra}, headers=headers)
        answers.append((response.status_code, response.json()))
        assert calls[0] == "operation:start" and "execute:start" in calls
        assert not any(call.startswith("resolve:") for call in calls)
    assert answers[0] == answers[1]
    assert answers[0][0] == 400 and "data" not in answers[0][1]
