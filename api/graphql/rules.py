"""Validation rules of our own, applied before anything executes."""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

# Fields that check a password: one per request, so aliases cannot batch guesses past the
# sign-in throttle's per-request accounting.
ONCE_PER_REQUEST = frozenset({"signIn", "updateCredentials"})


class OncePerRequest(ValidationRule):
    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        counts: dict[str, int] = {}
        self._count(node.selection_set, counts, set())
        for name, count in sorted(counts.items()):
            if count > 1:
                self.report_error(
                    GraphQLError(
                        f"'{name}' may appear only once per request",
                        node,
                        extensions={"code": "BAD_REQUEST"},
                    )
                )

    def _count(self, selections: SelectionSetNode, counts: dict[str, int], seen: set[str]) -> None:
        context: ValidationContext = self.context
        for selection in selections.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value in ONCE_PER_REQUEST:
                    counts[selection.name.value] = counts.get(selection.name.value, 0) + 1
            elif isinstance(selection, InlineFragmentNode):
                self._count(selection.selection_set, counts, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = context.get_fragment(name)
                if fragment is not None and name not in seen:
                    seen.add(name)
                    self._count(fragment.selection_set, counts, seen)
