"""Execution plans answer exactly as graphql-core does, and hand it every operation that
does not succeed throughout, without resolving any root field twice."""

from __future__ import annotations

import asyncio
import enum
from typing import Any

import pytest
import strawberry
from graphql import OperationDefinitionNode, parse
from strawberry.permission import BasePermission

from api.graphql.executor import AmendExecutionContext
from api.graphql.plans import Plan, plan_for
from api.graphql.schema import AmendSchema, build_schema
from tests.gql import ME

calls: dict[str, int] = {}


@strawberry.enum
class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Item:
    name: str
    count: int
    tags: list[str]
    colour: Colour | None = None
    note: str | None = None
    flag: bool = False


@strawberry.type
class Box:
    item: Item | None
    items: list[Item]


@strawberry.input
class Where:
    kind: str = "ok"
    tags: list[str] = strawberry.field(default_factory=list)
    at: int | None = strawberry.UNSET


class Deny(BasePermission):
    message = "not for you"

    def has_permission(self, source: Any, info: strawberry.Info, **kwargs: Any) -> bool:
        return False


class Bare:
    """An object without the attributes the schema reads."""

    name = "bare"


def _item(kind: str) -> Any:
    """What a resolver returns for each case: a good item or one of the ways it can fail."""
    good: dict[str, Any] = {"name": "a", "count": 1, "tags": ["x", "y"], "colour": Colour.RED}
    wrong: dict[str, dict[str, Any]] = {
        "null-name": {"name": None},
        "int-name": {"name": 7},
        "bad-count": {"count": "many"},
        "big-count": {"count": 2**40},
        "least-count": {"count": -(2**31)},
        "bool-count": {"count": True},
        "float-count": {"count": 3.0},
        "int-flag": {"flag": 1},
        "text-flag": {"flag": "yes"},
        "null-flag": {"flag": None},
        "bad-colour": {"colour": "blue"},
        "null-tag": {"tags": ["x", None]},
        "tags-not-a-list": {"tags": "xy"},
        "tags-a-generator": {"tags": (t for t in ("x", "y"))},
        "error-value": {"note": ValueError("kept")},
    }
    if kind == "bare":
        return Bare()
    if kind == "raise":
        raise ValueError("the resolver failed")
    if kind == "none":
        return None
    return Item(**{**good, **wrong.get(kind, {})})


@strawberry.type
class Query:
    @strawberry.field
    async def item(self, kind: str = "ok") -> Item:
        calls["item"] = calls.get("item", 0) + 1
        return _item(kind)  # type: ignore[no-any-return]

    @strawberry.field
    async def maybe(self, kind: str = "ok") -> Item | None:
        calls["maybe"] = calls.get("maybe", 0) + 1
        return _item(kind)  # type: ignore[no-any-return]

    @strawberry.field
    async def gathered(self, info: strawberry.Info) -> list[int]:
        """Concurrent work through graphql-core's helpers, and work left to settle."""
        helpers = info._raw_info.async_helpers

        async def value(n: int) -> int:
            await asyncio.sleep(0)
            return n

        async def later() -> None:
            calls["settled"] = calls.get("settled", 0) + 1

        helpers.track([later()])
        return list(await helpers.gather([value(1), value(2)]))

    @strawberry.field
    def echo(root: Any, where: Where, info: strawberry.Info, times: int = 1) -> str:
        """No `self`: the source as `root`; an input object; info asked for by name."""
        calls["echo"] = calls.get("echo", 0) + 1
        at = "unset" if where.at is strawberry.UNSET else where.at
        return f"{root!r} {where.kind} {where.tags} {at} {info.field_name} {times}"

    @strawberry.field(permission_classes=[Deny])
    async def guarded(self) -> str:
        calls["guarded"] = calls.get("guarded", 0) + 1
        return "secret"

    @strawberry.field
    def box(self, kind: str = "ok") -> Box:
        calls["box"] = calls.get("box", 0) + 1
        return Box(item=_item(kind), items=[_item("ok"), _item(kind)])


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def bump(self, kind: str = "ok") -> Item:
        calls["bump"] = calls.get("bump", 0) + 1
        return _item(kind)  # type: ignore[no-any-return]


SCHEMA = AmendSchema(query=Query, mutation=Mutation, execution_context_class=AmendExecutionContext)


def _plan(query: str, schema: AmendSchema = SCHEMA) -> Plan | None:
    document = parse(query)
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return plan_for(schema._schema, document, operation)


async def _answer(query: str, variables: dict[str, Any] | None, planned: bool) -> Any:
    plan = _plan(query) if planned else None
    if planned:
        assert plan is not None, "the case must run on a plan"
    calls.clear()
    result = await SCHEMA.execute_validated(parse(query), variables, None, None, plan=plan)
    errors = [e.formatted for e in result.errors or ()]
    return result.data, errors, dict(calls)


CASES = [
    "{ item { name count tags colour note flag } }",
    "{ a: item { n: name } b: maybe(kind: $k) { name } __typename t: __typename }",
    "{ item(kind: $k) { name count tags colour note flag __typename } }",
    "{ maybe(kind: $k) { name count tags colour } }",
    "{ box(kind: $k) { item { name count } items { name tags } } }",
    "mutation { first: bump { count } second: bump(kind: $k) { name count } third: bump { name } }",
]
KINDS = [
    "ok",
    "null-name",
    "int-name",
    "bad-count",
    "big-count",
    "least-count",
    "bool-count",
    "float-count",
    "int-flag",
    "text-flag",
    "null-flag",
    "bad-colour",
    "null-tag",
    "tags-not-a-list",
    "tags-a-generator",
    "error-value",
    "bare",
    "raise",
    "none",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES)
async def test_a_plan_answers_as_graphql_core_and_resolves_each_root_field_once(
    case: str, kind: str
) -> None:
    operation, _, rest = case.partition(" ") if case.startswith("mutation") else ("query", "", case)
    query = f"{operation} Q($k: String!) {rest}" if "$k" in case else f"{operation} Q {rest}"
    variables = {"k": kind}
    planned = await _answer(query, variables, planned=True)
    generic = await _answer(query, variables, planned=False)
    assert planned == generic


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ('{ echo(where: {kind: "x", tags: ["a", "b"]}) }', None),
        (
            "query Q($w: Where!, $n: Int!) { e: echo(where: $w, times: $n) }",
            {"w": {"at": 3}, "n": 2},
        ),
        ("query Q($w: Where!) { echo(where: $w) }", {"w": {"kind": 5}}),
    ],
)
async def test_root_resolvers_get_their_arguments_as_strawberry_converts_them(
    query: str, variables: dict[str, Any] | None
) -> None:
    plan = _plan(query)
    assert plan is not None and plan.fields[0].call is not None  # called without the wrapper
    assert await _answer(query, variables, planned=True) == await _answer(
        query, variables, planned=False
    )


async def test_a_root_field_with_a_permission_runs_through_strawberrys_wrapper() -> None:
    plan = _plan("{ guarded }")
    assert plan is not None and plan.fields[0].call is None
    planned = await _answer("{ guarded }", None, planned=True)
    assert planned == await _answer("{ guarded }", None, planned=False)
    assert planned[1][0]["message"] == "not for you" and planned[2] == {}


async def test_resolvers_get_graphql_cores_helpers_for_concurrent_work() -> None:
    planned = await _answer("{ gathered }", None, planned=True)
    await asyncio.sleep(0.01)  # tracked work settles in the background
    assert planned[0] == {"gathered": [1, 2]}
    assert calls.get("settled") == 1
    assert planned[:2] == (await _answer("{ gathered }", None, planned=False))[:2]


async def test_variables_that_do_not_coerce_are_reported_by_graphql_core() -> None:
    query = "query Q($k: String!) { item(kind: $k) { name } }"
    planned = await _answer(query, {"k": 5}, planned=True)
    assert planned == await _answer(query, {"k": 5}, planned=False)
    assert planned[0] is None and planned[2] == {}  # nothing resolved


async def test_a_successful_plan_never_builds_graphql_cores_executor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("graphql-core's executor was built")

    monkeypatch.setattr(AmendExecutionContext, "build", classmethod(refuse))
    data, errors, _ = await _answer("{ item { name tags } t: __typename }", None, planned=True)
    assert data == {"item": {"name": "a", "tags": ["x", "y"]}, "t": "Query"} and errors == []


@pytest.mark.parametrize(
    "query",
    [
        "{ item { ...F } } fragment F on Item { name }",
        "{ item { ... on Item { name } } }",
        "{ item { name @include(if: true) } }",
        "query @experimental_disableErrorPropagation { item { name } }",
        "{ item { name } item { count } }",
        "{ __schema { queryType { name } } }",
        "subscription { item }",
    ],
)
def test_shapes_a_plan_does_not_cover_are_left_to_graphql_core(query: str) -> None:
    assert _plan(query) is None


UPDATE_ME = (
    "mutation U($i: UpdateMeInput!) { updateMe(input: $i) "
    "{ user { firstName version } errors { code message field } } }"
)


@pytest.mark.parametrize("query", [ME, UPDATE_ME, "{ __typename }"])
def test_the_operations_clients_send_most_run_on_plans(query: str) -> None:
    assert _plan(query, build_schema()) is not None


def test_a_field_with_a_resolver_below_the_root_is_left_to_graphql_core() -> None:
    query = "mutation { updateMe(input: {}) { session { current { id } } } }"
    assert _plan(query, build_schema()) is None
