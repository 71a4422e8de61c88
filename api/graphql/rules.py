"""Amend's own rules for documents, checked before anything executes.

The depth limit counts every field, introspection fields too: Strawberry's
`QueryDepthLimiter` skips fields whose names start with `__`, so a
`__schema { types { fields { type { ofType { ofType … } } } } }` chain, the one recursive
path in Amend's schema, was never limited.

One password check per request: each field that checks or hashes a password is a guess the
sign-in throttle counts once per request, and an argon2 computation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

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
    value_from_ast_untyped,
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


# Fields whose arguments always carry a password to check or to hash.
PASSWORD_FIELDS = frozenset({"signIn", "signUp", "updateCredentials", "resetPassword"})
# `updateUser` checks (and may hash) the password of its document, when it has one.
DOCUMENT_FIELD = "updateUser"


def password_fields_error(
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> GraphQLError | None:
    """An error when the operation holds more than one field that checks or hashes a password.

    Each such field is a guess the sign-in throttle counts once per request, and an argon2
    computation: aliases and fragments must not turn one request into fifteen guesses. Run
    once variables are coerced (an `updateUser` document may come from a variable) and before
    any field executes.
    """
    found = [
        f for f in _root_fields(operation.selection_set, fragments, set()) if _checks(f, variables)
    ]
    if len(found) <= 1:
        return None
    names = ", ".join(sorted({f.name.value for f in found}))
    return GraphQLError(
        f"a field that checks or sets a password may appear only once per request ({names})",
        found,
        extensions={"code": "BAD_REQUEST"},
    )


def _checks(field: FieldNode, variables: Mapping[str, Any]) -> bool:
    name = field.name.value
    if name in PASSWORD_FIELDS:
        return True
    if name != DOCUMENT_FIELD:
        return False
    for argument in field.arguments or ():
        if argument.name.value == "data":
            data = value_from_ast_untyped(argument.value, dict(variables))
            return isinstance(data, dict) and "password" in data
    return False


def _root_fields(
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[FieldNode]:
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                seen.add(name)
                yield from _root_fields(fragment.selection_set, fragments, seen)
