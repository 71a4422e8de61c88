"""The schema and its protections."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    execute,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.execution.is_awaitable import optimized_is_awaitable
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    SchemaExtension,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.name_converter import NameConverter
from strawberry.types import ExecutionContext, ExecutionResult

from api.graphql.errors import log_error, redact_input
from api.graphql.executor import AmendExecutionContext
from api.graphql.hooks import ExtensionsRunner
from api.graphql.operation import AmendOperation, masked, service_unavailable
from api.graphql.plans import Plan, Replay
from api.graphql.resolvers import Mutation, Query, Subscription
from api.graphql.rules import MAX_DEPTH, depth_limit
from api.graphql.scalars import SCALAR_MAP

# A schema extension class, or a function building one: a fresh instance per operation.
ExtensionFactory = type[SchemaExtension] | Callable[[], SchemaExtension]

# graphql-core ends errors about misspelled arguments, input fields, enum values and type names
# with " Did you mean 'x'?"; Strawberry's `disable_field_suggestions` strips it from misspelled
# *fields* only. With introspection off, any such hint reveals the schema name by name.
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


class CachedNameConverter(NameConverter):
    """Strawberry converts each argument's field names to camelCase on every request; the
    names are few and fixed, so each is converted once."""

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}

    def apply_naming_config(self, name: str) -> str:
        converted = self._names.get(name)
        if converted is None:
            converted = self._names[name] = super().apply_naming_config(name)
        return converted


class _NamedOperation(ExecutionContext):
    """Strawberry runs a document's first operation when no `operationName` is given; the
    GraphQL spec makes a document with several operations and no name an error. Without a
    name here, graphql-core refuses it before executing anything."""

    @property
    def operation_name(self) -> str | None:
        document = self.graphql_document
        if self._provided_operation_name is None and document is not None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                return None
        return super().operation_name


class AmendSchema(strawberry.Schema):
    hide_suggestions: bool = False
    # What the limiter extensions enforce, for documents validated outside Strawberry's
    # pipeline (`api.graphql.documents`).
    validation_rules: tuple[type[ASTValidationRule], ...] = ()
    max_tokens: int = 0
    # No extension registered beside Amend's own (`api.graphql.operation`).
    own_extension_only: bool = True

    async def execute_validated(
        self,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        context: Any,
        operation_name: str | None,
        *,
        plan: Plan | None = None,
    ) -> ExecutionResult:
        """`execute` for a query or mutation already parsed and validated with this schema's
        limits, when Amend's own extension is the only one. Its hooks would find the document
        in their caches; what is left of them is done here with the same functions: errors
        logged and redacted, an unavailable database answered 503, unexpected errors masked.
        Strawberry's steps around them cost as much as executing a small query. With any
        other extension registered, every operation goes through `execute`, so that
        extension runs on every request. With a `plan` the operation runs on it, and on
        graphql-core (replaying what the plan resolved) when it ends in anything but data."""
        replay = None
        if plan is not None:
            outcome = await plan.run(self._schema, context, variables)
            if not isinstance(outcome, Replay):
                return ExecutionResult(data=outcome, errors=None)
            replay = [outcome]
        result = execute(
            self._schema,
            document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
            executor_class=self.execution_context_class,
            middleware=replay,
        )
        if isawaitable(result):
            result = await result
        assert isinstance(result, GraphQLExecutionResult)
        errors = result.errors
        if errors:
            self.process_errors(errors)
            response = getattr(context, "response", None)
            errors = masked(service_unavailable(errors, response))
        return ExecutionResult(data=result.data, errors=errors)

    def _create_execution_context(self, *args: Any, **kwargs: Any) -> ExecutionContext:
        context = super()._create_execution_context(*args, **kwargs)
        # The same dataclass with one property changed: no field to copy or forget.
        context.__class__ = _NamedOperation
        return context

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Never log (or echo) input values or query text: they may hold passwords and tokens.
        for error in errors:
            if self.hide_suggestions:
                # In place and idempotent, like Strawberry's own field-suggestion removal.
                error.message = _SUGGESTION.sub("", error.message)
            redact_input(error)
            log_error(error)


def build_schema(
    *,
    introspection: bool = True,
    field_suggestions: bool = True,
    max_depth: int = MAX_DEPTH,
    max_aliases: int = 15,
    max_tokens: int = 2000,
    extensions: Sequence[ExtensionFactory] = (),
) -> AmendSchema:
    """`extensions` are added after Amend's own (tracing, metrics...): they run for every
    operation, whichever path of the view executes it."""
    # Factories: Strawberry builds fresh extension instances per request; the parser and
    # validation caches live at module level (`api.graphql.operation`), shared by requests.
    # The limiters' validation rules are built once: a fresh rule class per request would
    # make every validation a cache miss (the cache is keyed by the rule classes).
    rules = [
        depth_limit(max_depth),
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    if not introspection:
        rules += DisableIntrospection().validation_rules
    factories: list[ExtensionFactory] = [
        AmendOperation.factory(tuple(rules), max_tokens),
        *extensions,
    ]
    schema = AmendSchema(
        execution_context_class=AmendExecutionContext,
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=factories,
        config=StrawberryConfig(
            disable_field_suggestions=not field_suggestions,
            scalar_map=SCALAR_MAP,
            name_converter=CachedNameConverter(),
        ),
    )
    schema.hide_suggestions = not field_suggestions
    schema.own_extension_only = not extensions
    schema.validation_rules = tuple(rules)
    schema.max_tokens = max_tokens
    return schema


def export_sdl() -> str:
    return build_schema().as_str() + "\n"
