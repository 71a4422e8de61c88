"""Models built from result rows whose columns are named for the model's fields.

SQLite hands booleans back as 0/1, so a field declared `bool` is coerced; everything else is
taken as the driver returns it. Fields the row does not hold are passed by the caller.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_Builder = Callable[[Mapping[str, Any], dict[str, Any]], Any]
# Per model class, column prefix and names given by the caller: a constructor call written
# out once, as `dataclasses` writes `__init__`. Building the keyword arguments field by field
# on every row cost more than the statement that read it.
_BUILDERS: dict[tuple[type, str, tuple[str, ...]], _Builder] = {}


def from_row(cls: type[T], row: Mapping[str, Any], *, prefix: str = "", **given: Any) -> T:
    """An instance of the dataclass `cls` from `row[prefix + field]`, with `given` taking
    the place of the columns it names."""
    key = (cls, prefix, tuple(given))
    build = _BUILDERS.get(key)
    if build is None:
        build = _BUILDERS[key] = _builder(cls, prefix, frozenset(given))
    built: T = build(row, given)
    return built


def _builder(cls: type, prefix: str, given: frozenset[str]) -> _Builder:
    values = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        name = field.name  # an identifier; the column label is written as a string literal
        if name in given:
            values.append((name, f"given[{name!r}]"))
        elif field.type in ("bool", bool):
            values.append((name, f"bool(row[{prefix + name!r}])"))
        else:
            values.append((name, f"row[{prefix + name!r}]"))
    namespace: dict[str, Any] = {"cls": cls}
    if _slot_built(cls):
        # A frozen dataclass's `__init__` stores each field through `object.__setattr__`,
        # at about three times the cost of the slot's own setter; the models read on every
        # request are built by those instead (the same values, and nothing else to run).
        lines = ["    built = new(cls)"]
        for name, value in values:
            namespace[f"set_{name}"] = cls.__dict__[name].__set__
            lines.append(f"    set_{name}(built, {value})")
        namespace["new"] = object.__new__
        body = "\n".join(lines) + "\n    return built"
    else:
        body = f"    return cls({', '.join(f'{name}={value}' for name, value in values)})"
    source = f"def build(row, given):\n{body}\n"
    exec(source, namespace)  # noqa: S102 - built from the model's own field names only
    builder: _Builder = namespace["build"]
    return builder


def _slot_built(cls: type) -> bool:
    """Whether `cls` may be built by setting its slots: a slotted dataclass whose `__init__`
    only stores its arguments (every field one, no `__post_init__`, no `__new__` of its own)."""
    fields = dataclasses.fields(cls)
    slots = getattr(cls, "__slots__", None)
    return (
        slots is not None
        and all("__new__" not in vars(base) for base in cls.__mro__[:-1])
        and not hasattr(cls, "__post_init__")
        and all(f.init for f in fields)
        and set(slots) == {f.name for f in fields}
    )
