"""Entry point for ASGI servers: `uvicorn --factory api.asgi:create_from_env`."""

from __future__ import annotations

from starlette.applications import Starlette

from api.app import create_app
from api.config import Settings
from api.logs import configure


def create_from_env() -> Starlette:
    settings = Settings.from_env()
    configure(settings.log_level)
    return create_app(settings)
