"""Security notices and recovery mails: what to tell whom (queued in the outbox).

A mail that holds a one-time token or code is queued sealed (encrypted with a key derived from
the secret key); the delivery opens it just for the send and redacts it once delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from api.core.clock import iso_seconds
from api.core.models import User
from api.security.sealing import Sealer
from api.store import Tx, outbox

SIGN_OFF = "If this was not you, reset your password and contact the application's support now."


@dataclass(frozen=True, slots=True)
class OneTimeLink:
    """A link (or a bare token) the mail carries, and when it stops working."""

    link: str
    expires_at: int


def link_for(template: str, token: str) -> str:
    """The configured link template with the token in it; the bare token without one."""
    return template.replace("{token}", token) if template else token


async def credentials_changed(
    tx: Tx,
    user: User,
    *,
    old_email: str | None,
    fields: list[str],
    ip: str | None,
    now: int,
    revert: OneTimeLink | None = None,
    sealer: Sealer | None = None,
    kind: str = "credentials_changed",
) -> None:
    """Queue one notice for a committed-with-this-transaction credential change: to the old
    address when the email changed (the new owner of the account must not be the only one
    told), else to the current one. A user without an email address cannot be told. With
    `revert`, the notice carries the "this wasn't me" link that undoes an email change (its
    kind is then `email_change_revert`, SPEC §11)."""
    to = old_email or user.email
    if not to:
        return
    what = " and ".join(sorted(fields)) or "credentials"
    body = (
        f"The {what} of the account '{user.username}' changed at {iso_seconds(now)}"
        f"{f' from {ip}' if ip else ''}. Every session was signed out.\n\n"
    )
    if revert is not None and sealer is not None:
        body += (
            f"If this was not you, this link puts your email address back and signs everyone "
            f"out: {revert.link}\nIt works once, until {iso_seconds(revert.expires_at)}. "
            f"Then choose a new password with the reset link we send you.\n\n"
            "If this was you, ignore this message."
        )
        subject = f"Your {what} changed"
        await _queue(tx, user, to, "email_change_revert", subject, body, now, sealer)
        return
    await outbox.queue(
        tx,
        user_pk=user.pk,
        to=to,
        kind=kind,
        subject=f"Your {what} changed",
        body=body + SIGN_OFF,
        now=now,
    )


async def email_change_code(
    tx: Tx, user: User, *, to: str, code: str, now: int, sealer: Sealer
) -> None:
    body = (
        f"Your code to confirm {to} as the email address of '{user.username}' is {code}. "
        f"It is valid for 15 minutes.\n\nIf you did not ask for this, ignore this message."
    )
    subject = "Confirm your new email address"
    await _queue(tx, user, to, "email_change_code", subject, body, now, sealer)


LinkMailKind = Literal["password_reset", "email_verification"]


@dataclass(frozen=True, slots=True)
class _LinkMail:
    """What a one-time link mail says around the link (`{username}`, `{project}` and `{to}`
    are filled in)."""

    subject: str
    ask: str  # what was asked, up to the link
    effect: str = ""  # what following the link does, beyond working once
    unchanged: str = ""  # what stays as it is when the reader ignores the mail


_LINK_MAILS: dict[LinkMailKind, _LinkMail] = {
    "password_reset": _LinkMail(
        subject="Reset your {project} password",
        ask="Someone asked to reset the password of the account '{username}' of {project}.\n\n"
        "Choose a new password here: ",
        effect=" Choosing a new password signs out every session.",
        unchanged=": your password stays as it is",
    ),
    "email_verification": _LinkMail(
        subject="Confirm your {project} email address",
        ask="Confirm that {to} is the email address of the account '{username}' of {project}: ",
    ),
}


async def link_mail(
    tx: Tx,
    user: User,
    kind: LinkMailKind,
    *,
    to: str,
    project: str,
    link: OneTimeLink,
    now: int,
    sealer: Sealer,
) -> None:
    """Queue the mail of this kind that carries a one-time link (sealed: the link holds
    the token)."""
    mail = _LINK_MAILS[kind]
    names = {"username": user.username, "project": project, "to": to}
    body = (
        f"{mail.ask.format_map(names)}{link.link}\n"
        f"This link works once, until {iso_seconds(link.expires_at)}.{mail.effect}\n\n"
        f"If you did not ask for this, ignore this message{mail.unchanged}."
    )
    await _queue(tx, user, to, kind, mail.subject.format_map(names), body, now, sealer)


async def _queue(
    tx: Tx, user: User, to: str, kind: str, subject: str, body: str, now: int, sealer: Sealer
) -> None:
    await outbox.queue(
        tx,
        user_pk=user.pk,
        to=to,
        kind=kind,
        subject=subject,
        body=sealer.seal(body),
        now=now,
        sealed=True,
    )
