"""Models built from result rows whose columns are named for the model's fields.

SQLite hands booleans back as 0/1, so a field declared `bool` is coerced; everything else is
taken as the driver returns it. Fields the row does not hold are passed by the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from api.core.frozen import slot_setters

T = TypeVar("T")

_Builder = Callable[[Any, dict[str, Any]], Any]
# Per model class, column prefix and names given by the caller: a constructor call written
# out once, as `dataclasses` writes `__init__`. Building the keyword arguments field by field
# on every row cost more than the statement that read it.
_BUILDERS: dict[tuple[type, str, tuple[str, ...], tuple[str, ...] | None], _Builder] = {}


def from_row(
    cls: type[T],
    row: Mapping[str, Any] | Sequence[Any],
    *,
    prefix: str = "",
    columns: tuple[str, ...] | None = None,
    **given: Any,
) -> T:
    """An instance of the dataclass `cls` from `row[prefix + field]`, with `given` taking
    the place of the columns it names. With `columns`, `row` is a row's values in the order
    of those column names (read by position, without a dict built for the row)."""
    built: T = reader(cls, prefix=prefix, columns=columns, given=tuple(given))(row, given)
    return built


def reader(
    cls: type[T],
    *,
    prefix: str = "",
    columns: tuple[str, ...] | None = None,
    given: tuple[str, ...] = (),
) -> Callable[[Mapping[str, Any] | Sequence[Any], dict[str, Any]], T]:
    """What `from_row` calls for these arguments: `(row, given values) -> instance`. Kept
    by a caller that reads such rows on every request, it spares looking the builder up,
    which with a long column list (hashed for the look-up) costs a third of the build."""
    key = (cls, prefix, given, columns)
    build = _BUILDERS.get(key)
    if build is None:
        build = _BUILDERS[key] = _builder(cls, prefix, frozenset(given), columns)
    return build


def _builder(
    cls: type, prefix: str, given: frozenset[str], columns: tuple[str, ...] | None
) -> _Builder:
    def column(name: str) -> str:
        label = prefix + name
        return f"row[{label!r}]" if columns is None else f"row[{columns.index(label)}]"

    values = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        name = field.name  # an identifier; the column label is written as a string literal
        if name in given:
            values.append((name, f"given[{name!r}]"))
        elif field.type in ("bool", bool):
            values.append((name, f"bool({column(name)})"))
        else:
            values.append((name, column(name)))
    namespace: dict[str, Any] = {"cls": cls}
    setters = slot_setters(cls)
    if setters is not None:
        # Set through the slots (as `quick_init` does), without the keyword call: the models
        # read on every request are built here.
        lines = ["    built = new(cls)"]
        for name, value in values:
            namespace[f"set_{name}"] = setters[name]
            lines.append(f"    set_{name}(built, {value})")
        namespace["new"] = object.__new__
        body = "\n".join(lines) + "\n    return built"
    else:
        body = f"    return cls({', '.join(f'{name}={value}' for name, value in values)})"
    source = f"def build(row, given):\n{body}\n"
    exec(source, namespace)  # noqa: S102 - built from the model's own field names only
    builder: _Builder = namespace["build"]
    return builder
