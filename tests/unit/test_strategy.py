"""The update strategy engine (SPEC §5): RFC 7396, force/merge/replace, document checks."""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.core.errors import AmendError, Reason
from api.core.strategy import (
    KEPT,
    STRATEGIES,
    AuthDocument,
    Strategy,
    apply_strategy,
    auth_document,
    check_auth_document,
    json_type,
    merge_patch,
    parse_strategy,
)

# --- JSON values for property tests ------------------------------------------------------

# Small and deadline-free: the unit suite must stay fast and must not flake on a busy machine.
fast = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_keys = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
_null_free_scalars = (
    st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_scalars = st.none() | _null_free_scalars
json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
json_objects = st.dictionaries(_keys, json_values, max_size=5)

null_free_values = st.recursive(
    _null_free_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=20,
)
null_free_objects = st.dictionaries(_keys, null_free_values, max_size=5)


def _has_null_member(value: object) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null_member(v) for v in value.values())
    return False


# --- RFC 7396 Appendix A ------------------------------------------------------------------

RFC_7396_EXAMPLES: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(
    ("target", "patch", "expected"), RFC_7396_EXAMPLES, ids=[f"A{i}" for i in range(1, 16)]
)
def test_merge_patch_matches_rfc_7396_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_null_removes_member() -> None:
    assert merge_patch({"a": 1, "b": 2}, {"a": None}) == {"b": 2}


def test_merge_null_for_absent_member_is_a_no_op() -> None:
    assert merge_patch({"b": 2}, {"a": None}) == {"b": 2}


def test_merge_recurses_into_objects() -> None:
    assert merge_patch({"a": {"x": 1, "y": 2}}, {"a": {"y": 3}}) == {"a": {"x": 1, "y": 3}}


def test_merge_arrays_replace_rather_than_concatenate() -> None:
    assert merge_patch({"a": [1, 2]}, {"a": [3]}) == {"a": [3]}


def test_merge_object_patch_onto_scalar_starts_from_empty_object() -> None:
    assert merge_patch(5, {"a": 1, "b": None}) == {"a": 1}


def test_merge_survives_nesting_deeper_than_the_recursion_limit() -> None:
    patch: dict[str, object] = {}
    node = patch
    for _ in range(5000):
        child: dict[str, object] = {}
        node["a"] = child
        node = child
    result = merge_patch({}, patch)
    assert isinstance(result, dict)
    assert "a" in result


# --- properties ---------------------------------------------------------------------------


@fast
@given(json_objects)
def test_merge_with_empty_patch_is_identity_on_objects(target: dict[str, Any]) -> None:
    assert merge_patch(target, {}) == target


@fast
@given(null_free_objects)
def test_merge_of_null_free_object_with_itself_is_itself(value: dict[str, Any]) -> None:
    assert merge_patch(value, value) == value


@fast
@given(json_values, json_values)
def test_force_returns_the_change(current: Any, change: Any) -> None:
    assert apply_strategy(Strategy.FORCE, current, change) is change


@fast
@given(json_values, json_values)
def test_replace_accepts_same_type_and_refuses_another(current: Any, change: Any) -> None:
    if json_type(current) == json_type(change):
        assert apply_strategy(Strategy.REPLACE, current, change) is change
    else:
        with pytest.raises(AmendError) as info:
            apply_strategy(Strategy.REPLACE, current, change)
        assert info.value.reason is Reason.TYPE_MISMATCH
        assert info.value.field == ("data",)


@fast
@given(json_values, json_objects)
def test_merge_result_never_keeps_a_member_patched_with_null(
    target: Any, patch: dict[str, Any]
) -> None:
    def check(result: Any, patch: Any) -> None:
        assert isinstance(result, dict)
        for key, value in patch.items():
            if value is None:
                assert key not in result
            elif isinstance(value, dict):
                check(result[key], value)
            else:
                assert result[key] == value

    result = merge_patch(target, patch)
    check(result, patch)
    assert not _has_null_member(result) or _has_null_member(target)


@fast
@given(json_values, json_values)
def test_merge_patch_never_mutates_its_inputs(target: Any, patch: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before


@fast
@given(json_objects, json_objects)
def test_apply_strategy_never_mutates_its_inputs(current: Any, change: Any) -> None:
    current_before, change_before = copy.deepcopy(current), copy.deepcopy(change)
    for strategy in Strategy:
        apply_strategy(strategy, current, change)
    assert current == current_before
    assert change == change_before


# --- strategies ---------------------------------------------------------------------------


def test_registry_holds_one_function_per_strategy() -> None:
    assert set(STRATEGIES) == set(Strategy)


@pytest.mark.parametrize(
    ("current", "change"),
    [({"a": 1}, [1]), ([1], {"a": 1}), ("text", {"a": 1}), ({"a": 1}, None)],
)
def test_merge_refuses_non_objects(current: object, change: object) -> None:
    with pytest.raises(AmendError) as info:
        apply_strategy(Strategy.MERGE, current, change)
    assert info.value.reason is Reason.NOT_AN_OBJECT
    assert info.value.field == ("data",)


def test_merge_keeps_the_password_sentinel() -> None:
    current = auth_document("jane", {"colour": "blue"})
    result = apply_strategy(Strategy.MERGE, current, {"colour": None, "size": 3})
    assert result == {"username": "jane", "password": KEPT, "size": 3}


def test_force_drops_the_password_unless_sent() -> None:
    current = auth_document("jane", {})
    result = apply_strategy(Strategy.FORCE, current, {"username": "jane"})
    with pytest.raises(AmendError) as info:
        check_auth_document(result)
    assert info.value.reason is Reason.REQUIRED_FIELD_MISSING
    assert info.value.field == ("data", "password")


def test_replace_of_object_with_string_is_a_type_mismatch() -> None:
    with pytest.raises(AmendError) as info:
        apply_strategy(Strategy.REPLACE, {"a": 1}, "text")
    assert info.value.reason is Reason.TYPE_MISMATCH


def test_apply_strategy_accepts_the_wire_value() -> None:
    assert apply_strategy(Strategy("merge"), {"a": 1}, {"b": 2}) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, Strategy.FORCE),
        ("force", Strategy.FORCE),
        ("MERGE", Strategy.MERGE),
        ("replace", Strategy.REPLACE),
    ],
)
def test_parse_strategy_reads_wire_values(value: str | None, expected: Strategy) -> None:
    assert parse_strategy(value) is expected


def test_parse_strategy_refuses_unknown_values() -> None:
    with pytest.raises(AmendError) as info:
        parse_strategy("patch")
    assert info.value.reason is Reason.INVALID_STRATEGY


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, "object"),
        ([], "array"),
        ("", "string"),
        (0, "number"),
        (1.5, "number"),
        (True, "boolean"),
        (False, "boolean"),
        (None, "null"),
        (KEPT, "string"),
    ],
)
def test_json_type_names_json_types(value: object, expected: str) -> None:
    assert json_type(value) == expected


def test_json_type_refuses_non_json_values() -> None:
    with pytest.raises(TypeError):
        json_type(object())


# --- the authentication document ----------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "reason", "field"),
    [
        ("text", Reason.NOT_AN_OBJECT, ("data",)),
        ([{"username": "a"}], Reason.NOT_AN_OBJECT, ("data",)),
        (None, Reason.NOT_AN_OBJECT, ("data",)),
        ({"password": "pw1234"}, Reason.REQUIRED_FIELD_MISSING, ("data", "username")),
        (
            {"username": None, "password": "pw1234"},
            Reason.REQUIRED_FIELD_MISSING,
            ("data", "username"),
        ),
        (
            {"username": "", "password": "pw1234"},
            Reason.REQUIRED_FIELD_MISSING,
            ("data", "username"),
        ),
        ({"username": 7, "password": "pw1234"}, Reason.INVALID_FIELD, ("data", "username")),
        ({"username": ["a"], "password": KEPT}, Reason.INVALID_FIELD, ("data", "username")),
        ({"username": "jane"}, Reason.REQUIRED_FIELD_MISSING, ("data", "password")),
        (
            {"username": "jane", "password": None},
            Reason.REQUIRED_FIELD_MISSING,
            ("data", "password"),
        ),
        (
            {"username": "jane", "password": ""},
            Reason.REQUIRED_FIELD_MISSING,
            ("data", "password"),
        ),
        ({"username": "jane", "password": 123456}, Reason.INVALID_FIELD, ("data", "password")),
        ({"username": "jane", "password": False}, Reason.INVALID_FIELD, ("data", "password")),
    ],
)
def test_check_auth_document_reports_reason_and_field(
    doc: object, reason: Reason, field: tuple[str, ...]
) -> None:
    with pytest.raises(AmendError) as info:
        check_auth_document(doc)
    assert info.value.reason is reason
    assert info.value.field == field
    assert len(info.value.problems) == 1


def test_check_auth_document_reports_both_fields_at_once() -> None:
    with pytest.raises(AmendError) as info:
        check_auth_document({"username": 3})
    problems = info.value.problems
    assert [(p.reason, p.field) for p in problems] == [
        (Reason.INVALID_FIELD, ("data", "username")),
        (Reason.REQUIRED_FIELD_MISSING, ("data", "password")),
    ]
    assert info.value.reason is Reason.INVALID_FIELD


def test_check_auth_document_kept_password_is_none() -> None:
    doc = check_auth_document({"username": "jane", "password": KEPT, "colour": "blue"})
    assert doc == AuthDocument(username="jane", password=None, data={"colour": "blue"})


def test_check_auth_document_new_password_is_returned_for_the_service_to_check() -> None:
    doc = check_auth_document({"username": "jane", "password": "s3cret!", "n": 1})
    assert doc.password == "s3cret!"
    assert doc.data == {"n": 1}


def test_check_auth_document_strips_account_fields_from_custom_data() -> None:
    doc = check_auth_document({"username": "jane", "password": KEPT, "email": "x@example.com"})
    assert doc.data == {"email": "x@example.com"}


def test_auth_document_puts_the_sentinel_in_place_of_the_password() -> None:
    data = {"colour": "blue"}
    assert auth_document("jane", data) == {"username": "jane", "password": KEPT, "colour": "blue"}
    assert data == {"colour": "blue"}


def test_auth_document_account_fields_win_over_stray_custom_keys() -> None:
    doc = auth_document("jane", {"username": "eve", "password": "x"})
    assert doc == {"username": "jane", "password": KEPT}


def test_kept_is_a_unique_sentinel_that_survives_copies() -> None:
    assert copy.copy(KEPT) is KEPT
    assert copy.deepcopy({"p": KEPT})["p"] is KEPT
    assert pickle.loads(pickle.dumps(KEPT)) is KEPT
    assert type(KEPT)() is KEPT
    assert KEPT != "KEPT"
    assert repr(KEPT) == "KEPT"


def test_merge_round_trip_of_an_unchanged_document_keeps_everything() -> None:
    current = auth_document("jane", {"a": {"b": 1}})
    new = check_auth_document(apply_strategy(Strategy.MERGE, current, {}))
    assert new == AuthDocument("jane", None, {"a": {"b": 1}})
