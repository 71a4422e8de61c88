"""Documents that parsed and validated once, executed without Strawberry's HTTP layer.

A client sends the same few operation texts over and over. Strawberry's HTTP view (its
request adapters, a second Response object, its JSON encoding) costs more than Amend's own
work on a small mutation, so the view executes a known-good document itself: straight on
graphql-core when Amend's own extension is the only one (`AmendSchema.execute_validated`),
through the schema's `execute` with every extension otherwise. A cached document keeps its
execution plan (`api.graphql.plans`), made once with it. Anything else: a text not
seen before that fails to parse or validate, a subscription, an `Accept` asking for a
streamed answer, an unusual body: goes through Strawberry's full view, which writes the
error answers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    get_operation_ast,
    parse,
)
from graphql.validation import specified_rules
from strawberry.schema.schema import validate_document

from api.graphql.plans import Plan, plan_for
from api.graphql.schema import AmendSchema


@dataclass(frozen=True, slots=True)
class Document:
    node: DocumentNode
    operation: OperationDefinitionNode
    plan: Plan | None  # see `api.graphql.plans`


class Documents:
    """A bounded cache of query texts that are valid against the schema and its limits."""

    def __init__(
        self,
        schema: AmendSchema,
        rules: Sequence[type[ASTValidationRule]],
        *,
        max_tokens: int,
        size: int = 256,
    ) -> None:
        self._schema = schema
        self._rules = (*specified_rules, *rules)
        self._max_tokens = max_tokens
        self._size = size
        self._valid: OrderedDict[tuple[str, str | None], Document] = OrderedDict()

    def get(self, query: str, operation_name: str | None) -> Document | None:
        """The document, if this text and operation name make a valid query or mutation."""
        key = (query, operation_name)
        found = self._valid.get(key)
        if found is not None:
            self._valid.move_to_end(key)
            return found
        try:
            node = parse(query, max_tokens=self._max_tokens)
        except GraphQLError:
            return None
        operation = get_operation_ast(node, operation_name)
        if operation is None or operation.operation is OperationType.SUBSCRIPTION:
            return None
        # Strawberry's own validation: these rules plus its Maybe and @oneOf checks.
        if validate_document(self._schema._schema, node, self._rules):
            return None
        # A plan runs only on the direct path (`AmendSchema.execute_validated`).
        schema = self._schema
        plan = plan_for(schema._schema, node, operation) if schema.own_extension_only else None
        found = Document(node, operation, plan)
        self._valid[key] = found
        if len(self._valid) > self._size:
            self._valid.popitem(last=False)
        return found
