"""An executed operation is freed by reference counting alone: nothing it builds waits for
the cyclic garbage collector (which would otherwise run every dozen requests)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from graphql import ExecutionResult, execute, parse
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.graphql.schema import AmendExecutionContext, build_schema

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
