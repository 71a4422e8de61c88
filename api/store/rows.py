"""Models built from result rows whose columns are named for the model's fields.

SQLite hands booleans back as 0/1, so a field declared `bool` is coerced; everything else is
taken as the driver returns it. Fields the row does not hold are passed by the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

# Per model class: (field name, declared bool) in declaration order, worked out once.
_LAYOUTS: dict[type, tuple[tuple[str, bool], ...]] = {}


def from_row(cls: type[T], row: Mapping[str, Any], *, prefix: str = "", **given: Any) -> T:
    """An instance of the dataclass `cls` from `row[prefix + field]`, with `given` taking
    the place of the columns it names."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        fields = dataclasses.fields(cls)  # type: ignore[arg-type]
        layout = _LAYOUTS[cls] = tuple((f.name, f.type in ("bool", bool)) for f in fields)
    values = dict(given)
    for name, is_bool in layout:
        if name not in values:
            value = row[prefix + name]
            values[name] = bool(value) if is_bool else value
    return cls(**values)
