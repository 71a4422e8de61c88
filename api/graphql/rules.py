"""The one-password-check-per-request rule, applied before anything executes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    value_from_ast_untyped,
)

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
