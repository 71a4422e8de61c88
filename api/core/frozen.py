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
from typing import Any, TypeVar

T = TypeVar("T")


def quick_init(cls: type[T]) -> type[T]:
    """Give `cls` the slot-storing `__init__`; a class whose `__init__` does more than
    store its arguments (`__post_init__`, default factories, keyword-only or non-init
    fields, fields without a slot) keeps the dataclass's own."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    if hasattr(cls, "__post_init__") or any(
        not f.init or f.kw_only or f.default_factory is not dataclasses.MISSING for f in fields
    ):
        return cls
    namespace: dict[str, Any] = {}
    parameters: list[str] = []
    lines: list[str] = []
    for f in fields:
        slot = next((vars(c)[f.name] for c in cls.__mro__ if f.name in vars(c)), None)
        if not isinstance(slot, types.MemberDescriptorType):
            return cls
        name = f.name  # an identifier: a field name
        namespace[f"set_{name}"] = slot.__set__
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
