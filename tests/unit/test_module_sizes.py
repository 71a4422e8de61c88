"""Small modules and functions in api/: no module over 400 lines, no function over 80."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parents[2] / "api"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def _modules() -> list[Path]:
    return sorted(p for p in API.rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(API)))
def test_module_and_its_functions_are_small(path: Path) -> None:
    name = str(path.relative_to(API))
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{name} has {text.count(chr(10))} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{name}:{node.name} has {length} lines"


SCRIPTS = API.parent / "scripts"


@pytest.mark.parametrize(
    "path",
    sorted(p for p in SCRIPTS.iterdir() if p.is_file()),
    ids=lambda p: p.name,
)
def test_every_script_is_small(path: Path) -> None:
    assert path.read_text().count("\n") <= MAX_MODULE_LINES
