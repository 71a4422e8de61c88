"""`quick_init`: the same instances as the dataclass's own `__init__`, built cheaper."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field

import pytest

from api.core.frozen import quick_init
from api.core.models import Caller, Session, User
from api.services.context import AuthenticatedCaller, Credentials


@dataclass(frozen=True, slots=True)
class _Plain:
    a: int
    b: str | None
    c: bool = True
    d: tuple[int, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class _Quick:
    a: int
    b: str | None
    c: bool = True
    d: tuple[int, ...] = ()


def _same(quick: object, plain: object) -> None:
    assert dataclasses.asdict(quick) == dataclasses.asdict(plain)  # type: ignore[call-overload]
    assert repr(quick).replace("_Quick", "_Plain") == repr(plain)


def test_arguments_and_defaults_are_stored_as_the_dataclass_stores_them() -> None:
    _same(_Quick(1, None), _Plain(1, None))
    _same(_Quick(a=2, b="x", c=False, d=(1,)), _Plain(a=2, b="x", c=False, d=(1,)))
    _same(_Quick(3, "y", d=(2, 3)), _Plain(3, "y", d=(2, 3)))
    assert _Quick(1, None) == _Quick(1, None) and hash(_Quick(1, None)) == hash(_Quick(1, None))
    assert list(inspect.signature(_Quick).parameters) == list(inspect.signature(_Plain).parameters)


def test_a_quick_instance_is_still_frozen_and_checks_its_arguments() -> None:
    built = _Quick(1, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.a = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        _Quick(1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Quick(1, None, e=3)  # type: ignore[call-arg]


def test_fields_inherited_from_a_slotted_parent_are_stored() -> None:
    user = object.__new__(User)
    session = object.__new__(Session)
    caller = AuthenticatedCaller(user=user, session=session, project=None)  # type: ignore[arg-type]
    assert (caller.user, caller.session, caller.project) == (user, session, None)
    assert isinstance(caller, Caller)
    assert Credentials(token="t").token == "t" and Credentials().origin is None


@quick_init
@dataclass(frozen=True, slots=True)
class _WithFactory:
    a: int
    seen: list[int] = field(default_factory=list)


@quick_init
@dataclass(frozen=True, slots=True)
class _WithPostInit:
    a: int

    def __post_init__(self) -> None:
        if self.a < 0:
            raise ValueError("negative")


def test_classes_whose_init_does_more_keep_the_dataclass_init() -> None:
    assert _WithFactory(1).seen == [] and _WithFactory(1).seen is not _WithFactory(1).seen
    with pytest.raises(ValueError, match="negative"):
        _WithPostInit(-1)
