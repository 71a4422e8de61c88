"""JSON text is read exactly: integers beyond 64 bits stay integers, NaN is refused."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.core import jsontext
from api.core.policy import validate_custom_data


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**400, 2**64 - 1, -(2**63)])
def test_long_integers_are_read_exactly(number: int) -> None:
    assert jsontext.loads(json.dumps({"n": number}).encode()) == {"n": number}


@pytest.mark.parametrize(
    "text", [b'{"n": NaN}', b"[Infinity]", b'{"n": -Infinity, "m": 1234567890123456789012}']
)
def test_non_finite_constants_are_refused(text: bytes) -> None:
    with pytest.raises(ValueError):
        jsontext.loads(text)


def test_long_digit_runs_inside_strings_are_plain_strings() -> None:
    assert jsontext.loads('{"phone": "12345678901234567890123"}') == {
        "phone": "12345678901234567890123"
    }


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_any_json_value_reads_back_as_written(value: object) -> None:
    assert jsontext.loads(json.dumps(value)) == value


@pytest.mark.parametrize("number", [2**64 - 1, -(2**63), 0, True])
def test_the_64_bit_edges_are_valid_custom_data(number: int) -> None:
    assert validate_custom_data({"n": number}, field=("data",)) == {"n": number}


@given(st.binary(max_size=64) | st.text(alphabet='0123456789 .,"-eE٣', max_size=64).map(str.encode))
def test_a_run_of_19_digits_is_found_exactly_where_a_regular_expression_finds_one(
    text: bytes,
) -> None:
    expected = re.search(rb"[0-9]{19}", text) is not None
    assert (jsontext._LONG_DIGITS in text.translate(jsontext._DIGITS_AS_ZEROS)) == expected
