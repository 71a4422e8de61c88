"""GraphQL input types."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

import strawberry
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryMaybe, StrawberryOptional
from strawberry.types.maybe import Some

from api.core.policy import DEFAULT_ENDPOINT
from api.graphql.scalars import JSON

T = TypeVar("T", bound=type)

_MISSING: Any = dataclasses.MISSING
# Scalars whose input value Strawberry passes through unchanged.
_PASSTHROUGH: frozenset[object] = frozenset({str, int, float, bool, JSON})


def flat_input(cls: T) -> T:
    """Build this input's value in one step, as Strawberry would.

    Strawberry converts each input argument field by field, re-inspecting every field's type
    on every request; for inputs whose fields are all plain scalars (maybe optional, maybe
    `Maybe[… | None]`) that is most of a small mutation's GraphQL overhead. This installs
    Strawberry's `from_input` hook with the same result: absent fields keep their default,
    `Maybe` fields that are present become `Some(value)`. `tests/graphql/test_inputs.py`
    compares both conversions. Any other field type is refused here, at import: `Maybe[T]`
    without `None` relies on Strawberry's own null check, which the hook turns off.
    """
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    plan: list[tuple[Any, str, bool]] = []
    unset_to_none: dict[str, None] = {}
    for field in definition.fields:
        kind = field.type
        maybe = isinstance(kind, StrawberryMaybe)
        inner = kind.of_type if maybe else kind
        if maybe and not isinstance(inner, StrawberryOptional):
            raise TypeError(f"{cls.__name__}.{field.python_name}: use Maybe[… | None]")
        leaf = inner.of_type if isinstance(inner, StrawberryOptional) else inner
        if leaf not in _PASSTHROUGH:
            raise TypeError(f"{cls.__name__}.{field.python_name}: not a plain scalar")
        plan.append((field, field.python_name, maybe))
        if field.default_value is _MISSING and field.default_factory is _MISSING:
            unset_to_none[field.python_name] = None
    names: list[tuple[str, str, bool]] = []

    def from_input(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        if not names:  # the schema's name converter decides the wire names; ask it once
            converter = context.config.name_converter
            names.extend((converter.from_field(f), py, maybe) for f, py, maybe in plan)
        kwargs: dict[str, Any] = dict(unset_to_none)
        for graphql_name, python_name, maybe in names:
            if graphql_name in value:
                given = value[graphql_name]
                kwargs[python_name] = Some(given) if maybe else given
        return target(**kwargs)

    definition.from_input = from_input
    return cls


@flat_input
@strawberry.input
class SignUpInput:
    endpoint: str | None = DEFAULT_ENDPOINT
    username: str
    password: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    data: JSON | None = None


@strawberry.input
class _Identified:
    """Who an account is, as sign-in and a reset request name it (not a schema type itself)."""

    endpoint: str | None = DEFAULT_ENDPOINT
    identifier: str = strawberry.field(description="username or email")


@flat_input
@strawberry.input
class SignInInput(_Identified):
    password: str


@flat_input
@strawberry.input
class UpdateCredentialsInput:
    email: str | None = None
    password: str | None = None
    current_password: str | None = None


@flat_input
@strawberry.input
class PasswordResetRequestInput(_Identified):
    pass


@flat_input
@strawberry.input
class ResetPasswordInput:
    token: str
    password: str


@flat_input
@strawberry.input(description="Absent fields are unchanged, null clears; data merges (RFC 7396).")
class UpdateMeInput:
    first_name: strawberry.Maybe[str | None]
    last_name: strawberry.Maybe[str | None]
    username: strawberry.Maybe[str | None]
    phone_number: strawberry.Maybe[str | None]
    image_url: strawberry.Maybe[str | None]
    data: strawberry.Maybe[JSON | None]
    expected_version: int | None = None
