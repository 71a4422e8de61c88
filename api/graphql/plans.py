"""Execution plans: a validated operation worked out once into the steps that answer it.

graphql-core works an operation out afresh on every request: it builds an executor, collects
each selection set's fields, looks up every field's definition, builds resolve info for every
field and completes each value through its generic machinery. For the few texts a client
sends over and over, all of that is the same each time, and costs more than the root field's
own resolver. A plan is made once per cached document, for the shapes it covers: a document
of one operation whose selections are fields only (no fragments, no directives), on object
types without an `is_type_of` check, whose non-root fields Strawberry reads as plain
attributes. Root fields run through their own resolvers, with the arguments and resolve info
graphql-core would give them.

A plan only ever answers an execution that succeeds throughout. Whatever could end in an error
(variables that do not coerce, a resolver that raises, a null for a non-null field, a value
that does not coerce, an attribute that is missing) hands the operation to graphql-core, with
the root fields resolved so far replayed (`Replay`): their outcome, value or exception, is
given back, never resolved twice, so a mutation takes effect once and graphql-core's own code
reports every error exactly as it would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from keyword import iskeyword
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    DocumentNode,
    FieldNode,
    GraphQLBoolean,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    get_nullable_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.pyutils import Path, gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.schema.schema import _OperationContextAwareGraphQLResolveInfo as ResolveInfo

from api.graphql.executor import ResolverCall, plain_attribute, resolver_call
from api.graphql.rules import password_fields_error

Complete = Callable[[Any], Any]
_NO_VARIABLES = VariableValues({}, {})
_TYPENAME = "__typename"
# The values some scalars output unchanged, as a test of the value `{}` (graphql-core's
# `serialize_string`, `serialize_id`, `serialize_int` and `serialize_boolean` return these as
# they are): a field's value that passes needs no completion.
_UNCHANGED = {
    GraphQLString: "type({0}) is str",
    GraphQLID: "type({0}) is str",
    GraphQLInt: f"type({{0}}) is int and {GRAPHQL_MIN_INT} <= {{0}} <= {GRAPHQL_MAX_INT}",
    GraphQLBoolean: "type({0}) is bool",
}


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    node: FieldNode
    field_def: GraphQLField | None  # None for `__typename`
    complete: Complete | None
    # Strawberry's resolver call without its wrapper, where the field allows it.
    call: ResolverCall | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    operation: OperationDefinitionNode
    root_type: GraphQLObjectType
    fields: tuple[RootField, ...]

    async def run(
        self, schema: GraphQLSchema, context: Any, variables: dict[str, Any] | None
    ) -> dict[str, Any] | Replay:
        """The operation's data, or what graphql-core needs to execute it instead."""
        replay = Replay()
        operation = self.operation
        if operation.variable_definitions:
            values = get_variable_values(
                schema, operation.variable_definitions, variables or {}, max_errors=50
            )
            if isinstance(values, list):
                return replay  # graphql-core reports them
        else:
            values = _NO_VARIABLES
        # One root field can never be two password checks.
        if len(self.fields) > 1 and password_fields_error(operation, {}, values.coerced):
            return replay
        data: dict[str, Any] = {}
        root_type = self.root_type
        for field in self.fields:
            field_def, complete = field.field_def, field.complete
            if field_def is None or complete is None:
                data[field.key] = root_type.name
                continue
            try:
                args = (
                    get_argument_values(field_def, field.node, values)
                    if field.node.arguments
                    else {}
                )
            except Exception:
                return replay
            info = ResolveInfo(
                field.node.name.value,
                [field.node],
                field_def.type,
                root_type,
                Path(None, field.key, root_type.name),
                schema,
                {},
                None,
                operation,
                values.coerced,
                context,
                optimized_is_awaitable,
                None,
                _HELPERS,
                None,  # type: ignore[arg-type]  # no operation extensions, as on graphql-core's path
            )
            try:
                if field.call is not None:
                    value = field.call(info, args)
                else:
                    value = field_def.resolve(None, info, **args)  # type: ignore[misc]
                if optimized_is_awaitable(value):
                    value = await value
            except Exception as error:
                replay.outcomes[field.key] = error
                return replay
            replay.outcomes[field.key] = value
            try:
                data[field.key] = complete(value)
            except Exception:
                return replay
        return data


class Replay:
    """graphql-core middleware that gives back the outcomes of root fields a plan resolved,
    and resolves every other field as usual."""

    __slots__ = ("outcomes",)

    def __init__(self) -> None:
        self.outcomes: dict[str, Any] = {}

    def resolve(self, next_: Callable[..., Any], root: Any, info: Any, **args: Any) -> Any:
        path = info.path
        if path.prev is None and path.key in self.outcomes:
            outcome = self.outcomes[path.key]
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return next_(root, info, **args)


def plan_for(
    schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode
) -> Plan | None:
    """The plan of a validated document's operation, or None for a shape plans do not cover."""
    if len(document.definitions) != 1 or operation.directives:
        return None
    if operation.operation not in (OperationType.QUERY, OperationType.MUTATION):
        return None
    root_type = schema.get_root_type(operation.operation)
    selected = _fields(operation.selection_set)
    if root_type is None or selected is None or root_type.is_type_of is not None:
        return None
    fields: list[RootField] = []
    for key, node in selected:
        if node.name.value == _TYPENAME:
            fields.append(RootField(key, node, None, None))
            continue
        field_def = root_type.fields.get(node.name.value)
        complete = field_def and _completer(field_def.type, node.selection_set)
        if field_def is None or complete is None:
            return None
        fields.append(RootField(key, node, field_def, complete, resolver_call(schema, field_def)))
    return Plan(operation, root_type, tuple(fields))


def _fields(selection_set: SelectionSetNode | None) -> list[tuple[str, FieldNode]] | None:
    """(response key, field) of a selection set of fields only, each key once; else None."""
    if selection_set is None:
        return None
    found: list[tuple[str, FieldNode]] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        key = selection.alias.value if selection.alias else selection.name.value
        if key in keys:
            return None  # merged fields: graphql-core's field collection decides
        keys.add(key)
        found.append((key, selection))
    return found


def _completer(type_: GraphQLOutputType, selection_set: SelectionSetNode | None) -> Complete | None:
    """How to complete a resolved value of this type: what graphql-core's `complete_value`
    does when nothing fails, raising whenever it would report an error."""
    if is_non_null_type(type_):
        if is_leaf_type(type_.of_type) and selection_set is None:
            return partial(_leaf, type_.of_type.coerce_output_value, False)
        inner = _completer(type_.of_type, selection_set)
        return None if inner is None else _non_null(inner)
    if is_list_type(type_):
        item = _completer(type_.of_type, selection_set)
        return None if item is None else _list_of(item)
    if is_leaf_type(type_):
        return (
            None if selection_set is not None else partial(_leaf, type_.coerce_output_value, True)
        )
    if is_object_type(type_):
        assert isinstance(type_, GraphQLObjectType)
        return _object(type_, selection_set)
    return None  # interfaces and unions: graphql-core resolves the runtime type


def _non_null(inner: Complete) -> Complete:
    def complete(value: Any) -> Any:
        completed = inner(value)
        if completed is None:
            raise _Unplanned
        return completed

    return complete


def _list_of(item: Complete) -> Complete:
    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if type(value) is not list and type(value) is not tuple:
            raise _Unplanned  # any other iterable, or none: graphql-core's list handling
        return [item(v) for v in value]

    return complete


def _leaf(coerce: Callable[[Any], Any], nullable: bool, value: Any) -> Any:
    """A scalar or enum value, coerced for output (bound with `partial`: one call a field)."""
    if value is None or value is Undefined:
        if nullable:
            return None
        raise _Unplanned
    if isinstance(value, Exception):
        raise _Unplanned
    coerced = coerce(value)
    if coerced is None or coerced is Undefined:
        raise _Unplanned
    return coerced


def _object(type_: GraphQLObjectType, selection_set: SelectionSetNode | None) -> Complete | None:
    """The completion of an object's selection set, written out once as one function (as
    `dataclasses` writes `__init__`): each field read and, unless its value is one the
    field's scalar outputs unchanged, completed; then one dict display. A loop over the
    fields cost three times as much, on every answer with a user in it."""
    selected = _fields(selection_set)
    if selected is None or type_.is_type_of is not None:
        return None
    # Values are passed by name through the namespace: nothing a client wrote (a response
    # key is an alias) is ever part of the code.
    namespace: dict[str, Any] = {"Undefined": Undefined, "_Unplanned": _Unplanned}
    lines = [
        "def complete_object(value):",
        "    if value is None or value is Undefined:",
        "        return None",
        "    if isinstance(value, Exception):",
        "        raise _Unplanned",
    ]
    entries = []
    for i, (key, node) in enumerate(selected):
        namespace[f"key_{i}"] = key
        entries.append(f"key_{i}: v_{i}")
        if node.name.value == _TYPENAME:
            namespace[f"v_{i}"] = type_.name
            continue
        field_def = type_.fields.get(node.name.value)
        if field_def is None or node.arguments:
            return None
        read = plain_attribute(field_def)
        complete = _completer(field_def.type, node.selection_set)
        if read is None or complete is None:
            return None
        resolver, attribute = read
        namespace[f"complete_{i}"] = complete
        if resolver is getattr and attribute.isidentifier() and not iskeyword(attribute):
            lines.append(f"    v_{i} = value.{attribute}")
        else:
            namespace[f"read_{i}"], namespace[f"attribute_{i}"] = resolver, attribute
            lines.append(f"    v_{i} = read_{i}(value, attribute_{i})")
        unchanged = _UNCHANGED.get(get_nullable_type(field_def.type))
        if unchanged is None:
            lines.append(f"    v_{i} = complete_{i}(v_{i})")
        else:
            lines.append(f"    if not ({unchanged.format(f'v_{i}')}):")
            lines.append(f"        v_{i} = complete_{i}(v_{i})")
    lines.append(f"    return {{{', '.join(entries)}}}")
    exec("\n".join(lines), namespace)  # noqa: S102 - names and generated text only
    complete_object: Complete = namespace["complete_object"]
    return complete_object


class _Unplanned(Exception):
    """A value graphql-core would report an error for: it completes the operation instead."""


# Resolvers may hand graphql-core concurrent work through their resolve info; on a plan's
# path the same helpers run it on the event loop.
_BACKGROUND: set[asyncio.Future[Any]] = set()


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    return gather_with_cancel(*values)


def _track(values: Sequence[Any]) -> None:
    awaitables = [v for v in values if optimized_is_awaitable(v)]
    if awaitables:
        future = asyncio.gather(*awaitables, return_exceptions=True)
        _BACKGROUND.add(future)
        future.add_done_callback(_BACKGROUND.discard)


_HELPERS = GraphQLResolveInfoHelpers(gather=_gather, track=_track)
