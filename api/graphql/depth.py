"""The query depth limit, counting every field: introspection fields too.

Strawberry's `QueryDepthLimiter` skips fields whose names start with `__`, so a
`__schema { types { fields { type { ofType { ofType … } } } } }` chain, the one recursive
path in Amend's schema, was never limited. Here they count like any other field.
"""

from __future__ import annotations

from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
)

# The standard introspection query (graphql-js `getIntrospectionQuery`, GraphiQL's and the
# code generators') nests 14 levels: `__schema types fields args type` then nine `ofType`.
# Amend's own types nest at most four, so the limit leaves that query one level to spare.
MAX_DEPTH = 15


class _Depth:
    """The deepest field level of selections, following fragments; stops descending one
    level past the limit, so a deep document costs no more than a legal one."""

    def __init__(self, fragments: dict[str, FragmentDefinitionNode], limit: int) -> None:
        self.fragments = fragments
        self.limit = limit
        self.active: set[str] = set()
        self.known: dict[tuple[str, int], int] = {}

    def of(self, selection_set: SelectionSetNode, depth: int) -> int:
        deepest = depth
        for selection in selection_set.selections:
            if deepest > self.limit:
                break
            if isinstance(selection, FieldNode):
                if selection.selection_set is not None:
                    deepest = max(deepest, self.of(selection.selection_set, depth + 1))
            elif isinstance(selection, InlineFragmentNode):
                deepest = max(deepest, self.of(selection.selection_set, depth))
            elif isinstance(selection, FragmentSpreadNode):
                deepest = max(deepest, self._spread(selection.name.value, depth))
        return deepest

    def _spread(self, name: str, depth: int) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in self.active:
            return depth  # unknown or cyclic: other validation rules report those
        found = self.known.get((name, depth))
        if found is None:
            self.active.add(name)
            found = self.known[(name, depth)] = self.of(fragment.selection_set, depth)
            self.active.discard(name)
        return found


def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A validation rule refusing operations whose fields nest deeper than `max_depth`
    (root fields are level 0), worded as Strawberry's limiter words it."""

    class DepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            definitions = context.document.definitions
            fragments = {
                d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)
            }
            for operation in definitions:
                if not isinstance(operation, OperationDefinitionNode):
                    continue
                depth = _Depth(fragments, max_depth).of(operation.selection_set, 0)
                if depth > max_depth:
                    name = operation.name.value if operation.name else "anonymous"
                    context.report_error(
                        GraphQLError(
                            f"'{name}' exceeds maximum operation depth of {max_depth}",
                            operation,
                        )
                    )

    return DepthLimit
