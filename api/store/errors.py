"""Translate integrity errors into the catalogue's conflicts."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from api.core.errors import AmendError, Reason


def taken(error: IntegrityError, *, field_prefix: tuple[str, ...] = ()) -> AmendError:
    text = str(error.orig).lower()
    if "email" in text:
        return AmendError(
            Reason.EMAIL_TAKEN, "this email address is already used", field=(*field_prefix, "email")
        )
    if "username" in text:
        return AmendError(
            Reason.USERNAME_TAKEN,
            "this username is already taken",
            field=(*field_prefix, "username"),
        )
    raise error
