"""Security notices: what to tell whom when credentials change (queued in the outbox)."""

from __future__ import annotations

from api.core.clock import iso_seconds
from api.core.models import User
from api.store import Tx, outbox

SIGN_OFF = "If this was not you, reset your password and contact the application's support now."


async def credentials_changed(
    tx: Tx, user: User, *, old_email: str | None, fields: list[str], ip: str | None, now: int
) -> None:
    """Queue one notice for a committed-with-this-transaction credential change: to the old
    address when the email changed (the new owner of the account must not be the only one
    told), else to the current one. A user without an email address cannot be told."""
    to = old_email or user.email
    if not to:
        return
    what = " and ".join(sorted(fields)) or "credentials"
    body = (
        f"The {what} of the account '{user.username}' changed at {iso_seconds(now)}"
        f"{f' from {ip}' if ip else ''}. Every session was signed out.\n\n{SIGN_OFF}"
    )
    await outbox.queue(
        tx,
        user_pk=user.pk,
        to=to,
        kind="credentials_changed",
        subject=f"Your {what} changed",
        body=body,
        now=now,
    )


async def email_change_code(tx: Tx, user: User, *, to: str, code: str, now: int) -> None:
    body = (
        f"Your code to confirm {to} as the email address of '{user.username}' is {code}. "
        f"It is valid for 15 minutes.\n\nIf you did not ask for this, ignore this message."
    )
    await outbox.queue(
        tx,
        user_pk=user.pk,
        to=to,
        kind="email_change_code",
        subject="Confirm your new email address",
        body=body,
        now=now,
    )
