"""`updateMe`: the signed-in user's own profile fields and custom data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core.clock import now_ms
from api.core.errors import AmendError, Problem, Reason
from api.core.frozen import quick_init
from api.core.models import User
from api.core.policy import (
    canonical_username,
    validate_custom_data,
    validate_image_url,
    validate_name,
    validate_phone,
    validate_username,
)
from api.core.strategy import merge_patch
from api.services import change_log, retry
from api.services.accounts import check_reserved_keys
from api.services.context import AuthenticatedCaller, RequestContext
from api.store import users

UNSET: Any = object()


@quick_init
@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """Each field: `UNSET` (absent, unchanged), None (cleared) or a new value."""

    first_name: Any = UNSET
    last_name: Any = UNSET
    username: Any = UNSET
    phone_number: Any = UNSET
    image_url: Any = UNSET
    data: Any = UNSET
    expected_version: int | None = None

    def given(self) -> list[str]:
        attrs = ("first_name", "last_name", "username", "phone_number", "image_url", "data")
        return [a for a in attrs if getattr(self, a) is not UNSET]


_VALIDATORS = {
    "first_name": validate_name,
    "last_name": validate_name,
    "phone_number": validate_phone,
    "image_url": validate_image_url,
}


def _validate(changes: ProfileChanges, given: list[str]) -> dict[str, Any]:
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    for attr in given:
        raw = getattr(changes, attr)
        path = (attr,)
        try:
            if attr == "username":
                if raw is None:
                    raise AmendError(
                        Reason.INVALID_FIELD, "the username cannot be cleared", field=path
                    )
                values[attr] = validate_username(raw, field=path)
            elif attr == "data":
                if raw is None:
                    raise AmendError(Reason.NOT_AN_OBJECT, "data must be a JSON object", field=path)
                patch = validate_custom_data(raw, field=path)
                reserved = check_reserved_keys(patch, path)
                if reserved:
                    raise AmendError.of(reserved)
                values[attr] = patch
            elif raw is None:
                values[attr] = None
            elif not isinstance(raw, str):
                raise AmendError(Reason.INVALID_FIELD, "must be a string or null", field=path)
            else:
                values[attr] = _VALIDATORS[attr](raw, field=path)
        except AmendError as error:
            problems.extend(error.problems)
    if problems:
        raise AmendError.of(problems)
    return values


async def update_me(ctx: RequestContext, changes: ProfileChanges) -> User:
    caller = await ctx.caller()
    given = changes.given()
    if not given:
        raise AmendError(Reason.EMPTY_UPDATE, "give at least one field to change")
    values = _validate(changes, given)
    # The first try starts from the user as the auth check read it (no SELECT); the version
    # check in the UPDATE itself tells whether it is still current. Later tries read afresh.
    known: User | None = caller.user

    async def one_try() -> User | None:
        nonlocal known
        try:
            return await _apply(ctx, caller, changes, values, known)
        finally:
            known = None

    return await retry.versioned(one_try, what="account")


async def _apply(
    ctx: RequestContext,
    caller: AuthenticatedCaller,
    changes: ProfileChanges,
    values: dict[str, Any],
    known: User | None,
) -> User | None:
    """One try; None when `known` turned out to be stale (read afresh and try again)."""
    now = now_ms()
    async with ctx.services.db.write() as tx:
        user = known or await users.by_pk(tx, caller.user.pk, for_update=True)
        if user is None:
            raise AmendError(Reason.USER_NOT_FOUND, "no user found for this token")
        if changes.expected_version is not None and user.version != changes.expected_version:
            if known is not None:
                return None  # perhaps only our copy is old
            raise AmendError(
                Reason.VERSION_CONFLICT,
                f"the record is at version {user.version}, not {changes.expected_version}",
                field=("expected_version",),
            )
        row: dict[str, Any] = {}
        for attr, value in values.items():
            if attr == "data":
                merged = merge_patch(user.data, value)
                assert isinstance(merged, dict)
                merged = validate_custom_data(merged, field=("data",))
                if merged != user.data:
                    row["data"] = merged
            elif value != getattr(user, attr):
                row[attr] = value
        if "username" in row:
            row["username_canonical"] = canonical_username(row["username"])
        if "phone_number" in row:
            row["phone_verified"] = False
        if not row:
            return user
        updated = await users.update_versioned(tx, user, row)
        if updated is None:
            return None  # another writer got there first
        await change_log.user_changed(
            ctx,
            tx,
            user_pk=user.pk,
            project_id=caller.project.id,
            action="update_me",
            fields=[a for a in row if a not in ("username_canonical", "phone_verified")],
            now=now,
            strategy="merge" if "data" in row else None,
        )
    return updated
