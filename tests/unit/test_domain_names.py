"""Services and the core name fields in the domain's words; each API spells them at its edge."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from api.core.errors import Problem, Reason
from api.graphql.types import UserError
from api.rest.me import _on_this_api

API = Path(__file__).resolve().parents[2] / "api"
CAMEL = re.compile(r"^[a-z]+[A-Z]")


def _field_literals(path: Path) -> list[str]:
    """The string literals inside every `field=` argument of the module."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.keyword) and node.arg == "field":
            found.extend(
                n.value
                for n in ast.walk(node.value)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            )
    return found


@pytest.mark.parametrize(
    "path",
    sorted([*(API / "services").glob("*.py"), *(API / "core").glob("*.py")]),
    ids=lambda p: p.name,
)
def test_service_field_paths_use_domain_names(path: Path) -> None:
    assert [name for name in _field_literals(path) if CAMEL.match(name)] == []


def test_graphql_spells_the_first_segment_as_its_input_and_keeps_data_keys() -> None:
    problem = Problem(Reason.REAUTHENTICATION_REQUIRED, "m", ("current_password",))
    assert UserError.from_problem(problem).field == ["currentPassword"]
    nested = Problem(Reason.INVALID_FIELD, "m", ("data", "shoe_size"))
    assert UserError.from_problem(nested).field == ["data", "shoe_size"]


def test_the_profile_api_keeps_snake_case_and_names_the_if_match_header() -> None:
    problem = Problem(Reason.INVALID_FIELD, "m", ("first_name",))
    assert _on_this_api(problem).field == ("first_name",)
    stale = Problem(Reason.VERSION_CONFLICT, "m", ("expected_version",))
    assert _on_this_api(stale).field == ("If-Match",)
