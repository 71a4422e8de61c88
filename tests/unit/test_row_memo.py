"""What was built from a row answers again only while the row reads exactly the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.store.memo import RowMemo


def test_the_same_values_answer_the_object_built_from_them() -> None:
    memo: RowMemo[object] = RowMemo(4)
    built = memo.put("s1", (1, "ada", 3), object())
    assert memo.get("s1", (1, "ada", 3)) is built


def test_changed_values_answer_nothing_until_rebuilt() -> None:
    memo: RowMemo[str] = RowMemo(4)
    memo.put("s1", (1, "ada", 3), "version 3")
    assert memo.get("s1", (1, "ada", 4)) is None
    assert memo.get("s1", (1, "eve", 3)) is None
    memo.put("s1", (1, "ada", 4), "version 4")
    assert memo.get("s1", (1, "ada", 4)) == "version 4"
    assert memo.get("s1", (1, "ada", 3)) is None  # only the last row is remembered
    assert len(memo) == 1


def test_an_unknown_key_answers_nothing() -> None:
    memo: RowMemo[str] = RowMemo(4)
    memo.put("s1", (1,), "one")
    assert memo.get("s2", (1,)) is None


def test_the_oldest_key_is_forgotten_when_full() -> None:
    memo: RowMemo[str] = RowMemo(2)
    memo.put("a", (1,), "a")
    memo.put("b", (2,), "b")
    memo.put("a", (3,), "a again")  # a key already held takes no new place
    assert memo.get("b", (2,)) == "b"
    memo.put("c", (4,), "c")
    assert memo.get("a", (3,)) is None
    assert memo.get("b", (2,)) == "b" and memo.get("c", (4,)) == "c"
    assert len(memo) == 2


@given(st.lists(st.tuples(st.sampled_from("abc"), st.tuples(st.integers(0, 3)))))
def test_an_answer_is_always_what_the_values_build(rows: list[tuple[str, tuple[int]]]) -> None:
    memo: RowMemo[tuple[int]] = RowMemo(2)
    for key, values in rows:
        built = memo.get(key, values)
        if built is None:
            built = memo.put(key, values, tuple(values))
        assert built == values
