"""An executed operation is freed by reference counting alone: nothing it builds waits for
the cyclic garbage collector (which would otherwise run every dozen requests)."""

from __future__ import annotations

import enum
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import strawberry
from graphql import ExecutionResult, execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql.executor import AmendExecutionContext
from api.graphql.schema import build_schema

SCHEMA = build_schema()


@pytest.fixture
def no_cyclic_collection() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _executed_by(executor_class: type[Any]) -> weakref.ref[Any]:
    built: list[weakref.ref[Any]] = []

    class Watched(executor_class):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    result = execute(SCHEMA._schema, parse("{ __typename }"), executor_class=Watched)
    assert isinstance(result, ExecutionResult) and result.data == {"__typename": "Query"}
    return built[0]


def test_the_schema_executes_with_the_cycle_free_executor() -> None:
    assert SCHEMA.execution_context_class is AmendExecutionContext


@pytest.mark.usefixtures("no_cyclic_collection")
def test_an_executed_operation_is_freed_without_the_garbage_collector() -> None:
    assert _executed_by(AmendExecutionContext)() is None


@pytest.mark.usefixtures("no_cyclic_collection")
def test_graphql_cores_own_executor_would_wait_for_the_collector() -> None:
    # What the subclass is for: should graphql-core drop the cycle, this fails and the
    # subclass can go.
    assert _executed_by(StrawberryGraphQLCoreExecutionContext)() is not None


# Plain attribute fields take a shorter path; what it cannot complete must end exactly as on
# graphql-core's own path.


class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Thing:
    name: str
    nickname: str | None
    count: int
    colour: Colour


@strawberry.type
class ThingQuery:
    @strawberry.field
    def thing(self, name: str | None = None, count: int = 1) -> Thing:
        return Thing(name=name, nickname=None, count=count, colour=Colour.RED)  # type: ignore[arg-type]


def _run(executor: type[Any], query: str) -> ExecutionResult:
    schema = strawberry.Schema(query=ThingQuery, execution_context_class=executor)
    result = execute(schema._schema, parse(query), executor_class=executor)
    assert isinstance(result, ExecutionResult)
    return result


@pytest.mark.parametrize(
    "query",
    [
        '{ thing(name: "a") { name nickname count colour } }',
        "{ thing { name nickname } }",  # null for a non-null field
        '{ thing(name: "a", count: 5000000000) { count } }',  # beyond a 32-bit Int
        '{ thing(name: "a") { n: name, name, c: colour } }',
    ],
)
def test_leaf_fields_complete_as_graphql_core_completes_them(query: str) -> None:
    ours = _run(AmendExecutionContext, query)
    theirs = _run(StrawberryGraphQLCoreExecutionContext, query)
    assert ours.data == theirs.data
    assert [e.formatted for e in ours.errors or ()] == [e.formatted for e in theirs.errors or ()]


def test_a_missing_non_null_leaf_is_an_error_at_its_path() -> None:
    result = _run(AmendExecutionContext, "{ thing { name } }")
    assert result.data is None
    assert result.errors and result.errors[0].path == ["thing", "name"]
