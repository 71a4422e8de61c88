from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api.graphql.schema import export_sdl

ROOT = Path(__file__).resolve().parent.parent


def test_checked_in_schema_equals_the_export() -> None:
    assert (ROOT / "schema.graphql").read_text() == export_sdl(), (
        "schema.graphql is stale: run `amend export-schema > schema.graphql`"
    )


def test_export_schema_command_prints_the_sdl() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "api", "export-schema"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    assert out == export_sdl()
    for name in ("updateUser", "updateCredentials", "updateMe", "signIn", "revokeSession"):
        assert name in out
