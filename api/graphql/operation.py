"""Amend's own work around every GraphQL operation, as one schema extension.

Limits (token count, validation rules), the parser and validation caches, masking unexpected
errors and answering 503 for an unavailable database were six extensions: Strawberry builds
each anew for every operation and enters each hook as its own context manager, which cost more
than executing a small query. One extension doing the same steps in the same order costs one
instance and three hooks. Extensions registered with the schema run after this one, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import Any

from graphql import ASTValidationRule, DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from api.core.errors import Unavailable
from api.graphql.errors import mark_response, should_mask, top_level

# Bounded caches: unique query texts cannot grow memory without limit.
CACHE_SIZE = 256
MASKED_MESSAGE = "Unexpected error."

# Shared by every operation; a text that fails to parse raises and is not cached.
_parse: Callable[..., DocumentNode] = lru_cache(maxsize=CACHE_SIZE)(parse)

_Validated = tuple[GraphQLSchema, DocumentNode, list[GraphQLError]]
_Key = tuple[int, int, tuple[type[ASTValidationRule], ...]]
_validated: OrderedDict[_Key, _Validated] = OrderedDict()


def service_unavailable(errors: list[GraphQLError], response: object) -> list[GraphQLError]:
    """Errors from an unavailable database become SERVICE_UNAVAILABLE, and the answer a 503
    with `Retry-After`."""
    if not any(isinstance(e.original_error, Unavailable) for e in errors):
        return errors
    answer = Unavailable.answer()
    mark_response(response, answer)
    return [
        top_level(answer, path=e.path) if isinstance(e.original_error, Unavailable) else e
        for e in errors
    ]


def masked(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Unexpected exceptions answered as "Unexpected error." (they are logged, not shown)."""
    return [
        GraphQLError(
            message=MASKED_MESSAGE,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
        )
        if should_mask(error)
        else error
        for error in errors
    ]


class AmendOperation(SchemaExtension):
    """Built by `AmendOperation.factory(...)`: a fresh instance per operation."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> None:
        self.rules = rules
        self.max_tokens = max_tokens

    @classmethod
    def factory(
        cls, rules: tuple[type[ASTValidationRule], ...], max_tokens: int
    ) -> Callable[[], AmendOperation]:
        return lambda: cls(rules, max_tokens)

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.max_tokens
        context.validation_rules = (*context.validation_rules, *self.rules)
        yield
        result: Any = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            response = getattr(self.execution_context.context, "response", None)
            result.errors = masked(service_unavailable(result.errors, response))
        initial = getattr(result, "initial_result", None)
        if initial is not None and initial.errors:
            initial.errors = masked(initial.errors)

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        """Strawberry's `ValidationCache`, keyed by the parsed document's identity: a
        graphql-core document hashes its whole tree on every lookup, and the parser cache
        hands out the same object for the same text. An entry holds its schema and document,
        so no identity is reused while it is cached."""
        context = self.execution_context
        schema, document = context.schema._schema, context.graphql_document
        assert document is not None
        key = (id(schema), id(document), context.validation_rules)
        found = _validated.get(key)
        if found is None or found[0] is not schema or found[1] is not document:
            errors = validate_document(schema, document, context.validation_rules)
            found = _validated[key] = (schema, document, errors)
            if len(_validated) > CACHE_SIZE:
                _validated.popitem(last=False)
        else:
            _validated.move_to_end(key)
        context.pre_execution_errors = found[2]
        yield

    def on_stream_result(self, result: Any) -> Iterator[None]:
        """A subscription's events (and any streamed result) are masked one by one."""
        if getattr(result, "errors", None):
            result.errors = masked(result.errors)
        yield None
