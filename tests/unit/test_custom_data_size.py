"""The size limit of custom data counts the bytes of compact UTF-8 JSON as the standard
module writes it; without floats it is measured with orjson, which must write the same bytes."""

from __future__ import annotations

import json

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from api.core.custom_data import _json_size, _walk
from api.core.jsontext import INT_MAX, INT_MIN

# Strings of every kind the walk lets through: control characters, quotes, backslashes,
# DEL, line separators, non-BMP characters (no NUL, no lone surrogates).
texts = st.text(
    st.one_of(
        st.sampled_from('"\\/\x01\x08\t\n\x0c\r\x1f\x7f\x85\u2028\u2029\ufeff\U0001f600'),
        st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
    ),
    max_size=12,
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(INT_MIN, INT_MAX), texts)
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=20,
)


def standard(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(texts, trees, max_size=5))
def test_orjson_writes_the_standard_bytes_for_data_without_floats(data: dict[str, object]) -> None:
    assert not _walk(data, ("data",))  # type: ignore[arg-type]
    assert orjson.dumps(data) == standard(data)
    assert _json_size(data, ("data",), has_float=False) == len(standard(data))  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(texts, st.floats(allow_nan=False, allow_infinity=False), min_size=1))
def test_data_with_floats_is_measured_by_the_standard_module(data: dict[str, object]) -> None:
    assert _walk(data, ("data",))  # type: ignore[arg-type]
    assert _json_size(data, ("data",), has_float=True) == len(standard(data))  # type: ignore[arg-type]
