"""Custom scalars: `DateTime` (integer milliseconds in, ISO 8601 with `Z` out) and `JSON`."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.scalars import JSON
from strawberry.types.scalar import ScalarDefinition

from api.core.clock import iso_ms

DateTime = NewType("DateTime", int)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="ISO 8601 date-time in UTC with milliseconds, e.g. 2024-01-01T00:00:00.000Z",
        serialize=iso_ms,
        parse_value=lambda value: value,
    )
}

__all__ = ["JSON", "SCALAR_MAP", "DateTime"]
