"""The architecture, enforced: a module imports only from its own layer or lower ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

API = Path(__file__).resolve().parent.parent / "api"

# Lowest first. graphql, rest and http are one layer (translation at the edge).
LAYERS: list[set[str]] = [
    {"config", "logs"},
    {"core"},
    {"security"},
    {"store"},
    {"services"},
    {"graphql", "rest", "http"},
    {"app", "asgi"},
    {"cli", "cli_data", "__main__"},
]
FRAMEWORKS = {"starlette", "strawberry", "uvicorn", "graphql", "fastapi"}
SQL = {"sqlalchemy", "sqlmodel", "alembic", "aiosqlite", "asyncpg"}


def _layer(part: str) -> int:
    for i, names in enumerate(LAYERS):
        if part in names:
            return i
    raise AssertionError(f"api/{part} belongs to no layer")


def _modules() -> list[Path]:
    return [p for p in API.rglob("*.py") if "migrations" not in p.parts]


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _part(path: Path) -> str:
    rel = path.relative_to(API)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(API)))
def test_module_respects_the_layers(path: Path) -> None:
    if path.name == "__init__.py" and path.parent == API:
        return
    own = _layer(_part(path))
    for name in _imports(path):
        top = name.split(".")[0]
        if top == "api" and name != "api":
            target = name.split(".")[1]
            assert _layer(target) <= own, f"{path.relative_to(API)} imports {name}"
        if own <= _layer("services"):
            assert top not in FRAMEWORKS, f"{path.relative_to(API)} imports the framework {top}"
        if _part(path) != "store":
            assert top not in SQL or _part(path) in {"store"}, (
                f"{path.relative_to(API)} speaks SQL through {top}; only api/store may"
            )
