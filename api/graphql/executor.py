"""The executor every GraphQL operation runs on, whichever path of the view starts it."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.arguments import convert_arguments
from strawberry.types.field import StrawberryField

from api.graphql.rules import password_fields_error


class AmendExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's executor, without the reference cycle graphql-core's has.

    graphql-core's executor keeps resolver helpers bound to itself, so every operation left a
    cycle holding its whole object graph (context, request, user) for the cyclic garbage
    collector: a collection every dozen requests, about 15 µs a request, and longer full
    collections. These helpers reach the executor through a weak reference; it is alive for
    as long as anything it runs can call them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        executor = weakref.ref(self)

        def gather(values: Any) -> Any:
            return _alive(executor).gather_async_work(values)

        def track(values: Any) -> None:
            _alive(executor).track_async_work(values)

        self.async_helpers = GraphQLResolveInfoHelpers(gather=gather, track=track)

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        # Every execution, whichever path runs it, is built here once its variables are
        # coerced: the place to refuse what needs variable values to tell, before any field runs.
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return built
        error = password_fields_error(
            built.operation, built.fragment_definitions, built.variable_values.coerced
        )
        return [error] if error is not None else built

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> Any:
        """A plain attribute of a scalar or enum type is read and coerced here; anything
        else, and anything that would end in an error (null for a non-null field, a value
        that does not coerce), goes through graphql-core's own path, which reads it again
        (an attribute read has no effect) and reports it exactly as always."""
        manager = self.middleware_manager
        if (manager is None or not manager.middlewares) and self.abort_signal is None:
            key = (parent_type, field_details_list[0].node.name.value)
            try:
                leaf = _LEAVES[key]
            except KeyError:
                field_def = self.schema.get_field(*key)
                leaf = _LEAVES[key] = _leaf(field_def) if field_def is not None else None
            if leaf is not None:
                resolver, name, coerce, non_null = leaf
                try:
                    value = resolver(source, name)
                    if value is None and not non_null:
                        return None
                    if value is not None and not isinstance(value, Exception):
                        coerced = coerce(value)
                        if coerced is not None and coerced is not Undefined:
                            return coerced
                except Exception:  # noqa: S110 - reported by the generic path below
                    pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


def _alive(ref: weakref.ref[AmendExecutionContext]) -> AmendExecutionContext:
    executor = ref()
    if executor is None:
        raise RuntimeError("the operation has finished")
    return executor


# How to read a plain attribute field: (resolver, Python name, output coercion, non-null), or
# None for every other field. By schema type and field name: a schema's types live as long
# as it does.
_Leaf = tuple[Any, str, Any, bool]
_LEAVES: dict[tuple[GraphQLObjectType, str], _Leaf | None] = {}


def plain_attribute(field_def: GraphQLField) -> tuple[Callable[[Any, str], Any], str] | None:
    """How Strawberry reads a field that is a plain attribute (no resolver, no permission,
    no field extension, no argument): its default resolver and the attribute's name."""
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if field_def.args or not getattr(definition, "is_basic_field", False):
        return None
    resolver = getattr(definition, "default_resolver", None)
    name = getattr(definition, "python_name", None)
    if resolver is None or not isinstance(name, str):
        return None
    return resolver, name


def _leaf(field_def: GraphQLField) -> _Leaf | None:
    """A plain attribute field whose type is a scalar or an enum: completing it is one read
    and one output coercion, what graphql-core's generic path does for it in several calls."""
    read = plain_attribute(field_def)
    non_null = is_non_null_type(field_def.type)
    output = field_def.type.of_type if non_null else field_def.type  # type: ignore[union-attr]
    if read is None or not is_leaf_type(output):
        return None
    return read[0], read[1], output.coerce_output_value, non_null


# (resolve info, arguments): graphql-core's info or Strawberry's operation-aware copy of it
ResolverCall = Callable[[Any, dict[str, Any]], Any]


def resolver_call(schema: GraphQLSchema, field_def: GraphQLField) -> ResolverCall | None:
    """How Strawberry calls a root field's resolver, for a field with a resolver and nothing
    around it (no field extension, permission or exception handler): its `Info`, the
    arguments converted to Strawberry's input types, and the source, root and info passed
    to the parameters that ask for them. Strawberry's own wrapper does the same through four
    nested calls and two coroutines per field, and inspects the resolver's parameters on
    every call; here they are looked at once."""
    owner = (schema.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    field = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    converter = getattr(owner, "schema_converter", None)
    if (
        not isinstance(field, StrawberryField)
        or not isinstance(converter, GraphQLCoreConverter)
        or field.base_resolver is None
        or field.is_basic_field
        or field.extensions
        or converter._get_field_exception_handlers(field)
        or not callable(field.base_resolver.wrapped_func)
    ):
        return None
    resolver = field.base_resolver
    function = cast(Callable[..., Any], resolver.wrapped_func)
    info_class, config, scalars = (
        converter.config.info_class,
        converter.config,
        converter.scalar_registry,
    )
    arguments = field.arguments
    # A root field's source is None: passed as `self`, and as `root` or the parent.
    source_args = [None] if resolver.self_parameter else []
    given_none = tuple(
        p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None
    )
    info_name = resolver.info_parameter.name if resolver.info_parameter else None

    def call(info: Any, kwargs: dict[str, Any]) -> Any:
        strawberry_info = info_class(_raw_info=info, _field=field)
        named = (
            convert_arguments(
                kwargs, arguments, scalar_registry=scalars, config=config, info=strawberry_info
            )
            if arguments
            else {}
        )
        for name in given_none:
            named[name] = None
        if info_name is not None:
            named[info_name] = strawberry_info
        return function(*source_args, **named)

    return call
