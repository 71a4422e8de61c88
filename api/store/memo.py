"""What was built from a row, remembered with the row itself.

Every authenticated request reads its session joined with the user and project, and turning
that row into models (type conversions, a dict per row, three objects) costs about as much
as SQLite takes to answer it. The row still has to be read each time: it is what says the
session is live. But while a key's row reads exactly the same, what it builds is the same
too, and the models are immutable, so the object built last time answers again.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class RowMemo(Generic[T]):
    """Per key, the last row's values and what was built from them (at most `size` keys,
    the oldest forgotten first). What is built must depend on the values alone and must
    not be changed by its readers: one object answers every request that reads that row."""

    __slots__ = ("_built", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._built: dict[Hashable, tuple[Sequence[Any], T]] = {}

    def get(self, key: Hashable, values: Sequence[Any]) -> T | None:
        """What was built from these very values, if they are still the key's last."""
        hit = self._built.get(key)
        if hit is not None and hit[0] == values:
            return hit[1]
        return None

    def put(self, key: Hashable, values: Sequence[Any], built: T) -> T:
        remembered = self._built
        if key not in remembered and len(remembered) >= self._size:
            del remembered[next(iter(remembered))]
        remembered[key] = (values, built)
        return built

    def __len__(self) -> int:
        return len(self._built)
