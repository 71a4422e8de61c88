"""Frozen dataclasses that cost little to build.

`@dataclass(frozen=True)` writes an `__init__` that stores each field through
`object.__setattr__` (its own `__setattr__` refuses): about three times the cost of the slot's
own setter. The views built on every request (a session, its user, the caller) have many
fields, so `@quick_init` gives a frozen slotted dataclass an `__init__` with the same
parameters and defaults that stores each argument through its slot. Equality, hashing,
`repr` and the refusal to change a field afterwards are the dataclass's own, unchanged.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def slot_setters(cls: type) -> dict[str, Callable[[Any, Any], None]] | None:
    """Each field's slot setter, when an instance of the dataclass `cls` is built fully by
    calling them on `object.__new__(cls)`: its `__init__` only stores its arguments (no
    `__post_init__`, default factories, keyword-only or non-init fields, no `__new__` of its
    own) and every field has a slot. None otherwise."""
    fields = dataclasses.fields(cls)
    if (
        hasattr(cls, "__post_init__")
        or any("__new__" in vars(base) for base in cls.__mro__[:-1])
        or any(
            not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields
        )
    ):
        return None
    setters: dict[str, Callable[[Any, Any], None]] = {}
    for f in fields:
        slot = next((vars(c)[f.name] for c in cls.__mro__ if f.name in vars(c)), None)
        if not isinstance(slot, types.MemberDescriptorType):
            return None
        setters[f.name] = slot.__set__
    return setters


def quick_init(cls: type[T]) -> type[T]:
    """Give `cls` the slot-storing `__init__`, when `slot_setters` finds it can be built
    that way; otherwise it keeps the dataclass's own."""
    setters = slot_setters(cls)
    if setters is None:
        return cls
    namespace: dict[str, Any] = {}
    parameters: list[str] = []
    lines: list[str] = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f.name  # an identifier: a field name
        namespace[f"set_{name}"] = setters[name]
        if f.default is dataclasses.MISSING:
            parameters.append(name)
        else:
            namespace[f"default_{name}"] = f.default
            parameters.append(f"{name}=default_{name}")
        lines.append(f"    set_{name}(self, {name})")
    source = f"def __init__(self, {', '.join(parameters)}):\n" + "\n".join(lines) + "\n"
    exec(source, namespace)  # noqa: S102 - built from the class's own field names only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    type.__setattr__(cls, "__init__", init)
    return cls
