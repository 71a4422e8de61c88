"""Output types built from the services' views equal what their constructors build."""

from __future__ import annotations

import dataclasses

import strawberry

from api.core.models import User as UserView
from api.graphql.scalars import JSON, DateTime
from api.graphql.types import User

VIEW = UserView(
    pk=7,
    unique_id="ab" * 16,
    endpoint_id=3,
    endpoint="users",
    username="ada",
    email="ada@example.com",
    first_name="Ada",
    last_name=None,
    phone_number=None,
    image_url="https://example.com/a.png",
    two_factor_enabled=False,
    email_verified=True,
    phone_verified=False,
    data={"team": ["blue"]},
    version=4,
    created_at=1_700_000_000_000,
    updated_at=1_700_000_000_123,
    password_hash="$argon2id$secret",
)


def test_a_user_from_a_view_equals_the_constructed_one() -> None:
    built = User.from_view(VIEW)
    expected = User(
        id=strawberry.ID(VIEW.public_id),
        unique_id=VIEW.unique_id,
        endpoint=VIEW.endpoint,
        username=VIEW.username,
        email=VIEW.email,
        first_name=VIEW.first_name,
        last_name=VIEW.last_name,
        phone_number=VIEW.phone_number,
        image_url=VIEW.image_url,
        two_factor_enabled=VIEW.two_factor_enabled,
        email_verified=VIEW.email_verified,
        phone_verified=VIEW.phone_verified,
        data=JSON(VIEW.data),
        version=VIEW.version,
        created_at=DateTime(VIEW.created_at),
        updated_at=DateTime(VIEW.updated_at),
    )
    assert built == expected
    assert vars(built) == vars(expected)
    assert type(built) is User


def test_a_user_holds_every_field_of_its_type_and_never_the_password_hash() -> None:
    built = User.from_view(VIEW)
    assert set(vars(built)) == {f.name for f in dataclasses.fields(User)}
    assert "$argon2id$secret" not in repr(vars(built))
