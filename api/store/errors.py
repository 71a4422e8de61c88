"""Translate integrity errors into the catalogue's conflicts."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from api.core.errors import AmendError, Reason


def taken(error: IntegrityError, *, field_prefix: tuple[str, ...] = ()) -> AmendError:
    # Match the constraint (PostgreSQL) or the column (SQLite), never the values: a username
    # may look like an email address.
    text = str(error.orig).lower()
    if "uq_users_email" in text or "users.email_canonical" in text:
        return AmendError(
            Reason.EMAIL_TAKEN, "this email address is already used", field=(*field_prefix, "email")
        )
    if "uq_users_username" in text or "users.username_canonical" in text:
        return AmendError(
            Reason.USERNAME_TAKEN,
            "this username is already taken",
            field=(*field_prefix, "username"),
        )
    raise error
