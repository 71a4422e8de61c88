"""Input types build their values through `flat_input`: the same values Strawberry's own,
field-by-field conversion builds."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from hypothesis import given
from hypothesis import strategies as st
from strawberry.types.arguments import convert_argument

from api.graphql.inputs import (
    SignInInput,
    SignUpInput,
    UpdateCredentialsInput,
    UpdateMeInput,
    flat_input,
)
from api.graphql.schema import build_schema

SCHEMA = build_schema()
CONFIG = SCHEMA.config
SCALARS = SCHEMA.schema_converter.scalar_registry
INPUTS = (SignUpInput, SignInInput, UpdateCredentialsInput, UpdateMeInput)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)


def _graphql_names(cls: type) -> list[str]:
    converter = CONFIG.name_converter
    return [converter.from_field(f) for f in cls.__strawberry_definition__.fields]  # type: ignore[attr-defined]


@st.composite
def input_values(draw: st.DrawFn) -> tuple[type, dict[str, Any]]:
    """An input type and a value for it as graphql-core hands it over: any subset of its
    fields, each null, a string, an integer or any JSON."""
    cls = draw(st.sampled_from(INPUTS))
    names = _graphql_names(cls)
    chosen = draw(st.lists(st.sampled_from(names), unique=True))
    value = {
        name: draw(st.none() | st.text(max_size=8) | st.integers() | json_values) for name in chosen
    }
    return cls, value


def _stock(cls: type, value: dict[str, Any]) -> Any:
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    hook, definition.from_input = definition.from_input, None
    try:
        return convert_argument(value, cls, SCALARS, CONFIG)
    finally:
        definition.from_input = hook


def _fields(instance: Any) -> dict[str, Any]:
    return dict(vars(instance))


@given(input_values())
def test_flat_input_builds_what_strawberry_builds(case: tuple[type, dict[str, Any]]) -> None:
    cls, value = case
    ours = convert_argument(value, cls, SCALARS, CONFIG)
    stock = _stock(cls, value)
    assert type(ours) is type(stock) is cls
    assert _fields(ours) == _fields(stock)


def test_flat_input_keeps_absent_maybe_fields_apart_from_null_ones() -> None:
    built = convert_argument({"firstName": None, "imageUrl": "x"}, UpdateMeInput, SCALARS, CONFIG)
    assert built.first_name == strawberry.Some(None)
    assert built.image_url == strawberry.Some("x")
    assert built.last_name is None  # absent: unchanged
    assert built.expected_version is None


def test_flat_input_refuses_a_maybe_that_cannot_be_null() -> None:
    with pytest.raises(TypeError, match="Maybe"):

        @flat_input
        @strawberry.input
        class Strict:
            name: strawberry.Maybe[str]


def test_flat_input_refuses_a_nested_input() -> None:
    with pytest.raises(TypeError, match="plain scalar"):

        @flat_input
        @strawberry.input
        class Outer:
            inner: SignInInput | None = None
