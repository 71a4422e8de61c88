from __future__ import annotations

import strawberry

from api.graphql.scalars import JSON


@strawberry.input
class SignUpInput:
    endpoint: str | None = "users"
    username: str
    password: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    data: JSON | None = None


@strawberry.input
class SignInInput:
    endpoint: str | None = "users"
    identifier: str = strawberry.field(description="username or email")
    password: str


@strawberry.input
class UpdateCredentialsInput:
    email: str | None = None
    password: str | None = None
    current_password: str | None = None


@strawberry.input(description="Absent fields are unchanged, null clears; data merges (RFC 7396).")
class UpdateMeInput:
    first_name: strawberry.Maybe[str | None]
    last_name: strawberry.Maybe[str | None]
    username: strawberry.Maybe[str | None]
    phone_number: strawberry.Maybe[str | None]
    image_url: strawberry.Maybe[str | None]
    data: strawberry.Maybe[JSON | None]
    expected_version: int | None = None
