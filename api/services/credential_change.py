"""The one step every credential change takes, whichever route made it.

A changed password or email address signs out every session, settles a pending email change,
queues the security notice, announces the change to watchers, writes the audit entry and makes
later resolvers of the same request read the caller afresh. Every route that changes
credentials (GraphQL, the REST shims, recovery) calls `committed` inside its write
transaction, so none of these can be forgotten by one route.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.core.errors import AmendError, Reason
from api.core.models import Actor, User
from api.core.policy import canonical_email
from api.security.sealing import new_token
from api.services import change_log, notices
from api.services.context import RequestContext
from api.store import Tx, email_changes, recovery_tokens, sessions, users

# Purposes of recovery tokens (a token of one purpose never answers for another).
RESET = "password_reset"
REVERT = "email_revert"
VERIFY = "email_verify"


@dataclass(frozen=True, slots=True)
class CredentialChange:
    """What changed and who changed it, for the notice and the audit entry."""

    action: str  # the audit action: update_user, update_credentials, confirm_email_change, ...
    fields: tuple[str, ...]  # the credentials that changed: "email", "password"
    actor: Actor
    old_email: str | None = None  # set when the email changed: the notice goes there
    audit_fields: tuple[str, ...] | None = None  # defaults to `fields`
    strategy: str | None = None
    keep_pending_email: bool = False  # the change itself just started a pending email change
    project_id: str | None = None  # when the request carries no key or session (recovery)
    revertible: bool = True  # an email change mails the old address a "this wasn't me" link
    notice: str = "credentials_changed"  # the outbox kind of the notice (SPEC §9, §11)


def verified_email(email: str) -> dict[str, Any]:
    """The columns that make `email` the account's (verified) address."""
    return {"email": email, "email_canonical": canonical_email(email), "email_verified": True}


async def store(
    ctx: RequestContext,
    tx: Tx,
    current: User,
    changes: dict[str, Any],
    change: CredentialChange,
    *,
    now: int,
) -> User:
    """Write `changes` over `current` (version-checked) and take the credential-change step."""
    updated = await users.update_versioned(tx, current, changes)
    if updated is None:  # pragma: no cover - the row is locked or the writer serialised
        raise AmendError(Reason.VERSION_CONFLICT, "the account changed meanwhile; try again")
    await committed(ctx, tx, updated, change, now=now)
    return updated


async def add_token(
    ctx: RequestContext,
    tx: Tx,
    user: User,
    *,
    purpose: str,
    token: str,
    email: str,
    ttl_seconds: int,
    now: int,
    identifier: str | None = None,
) -> int:
    """Store a one-time recovery token (its digest only); returns when it expires. The
    identifier (what throttles count by) defaults to the canonical address."""
    expires_at = now + ttl_seconds * 1000
    await recovery_tokens.add(
        tx,
        digest=ctx.services.sealer.digest(purpose, token),
        purpose=purpose,
        endpoint_id=user.endpoint_id,
        user_pk=user.pk,
        identifier=canonical_email(email) if identifier is None else identifier,
        email=email,
        ip=ctx.ip,
        now=now,
        expires_at=expires_at,
    )
    return expires_at


async def committed(
    ctx: RequestContext, tx: Tx, updated: User, change: CredentialChange, *, now: int
) -> None:
    """Inside the write transaction that stored `updated`: everything a credential change
    implies. The notice is delivered after the commit."""
    services = ctx.services
    await sessions.revoke_all(tx, user_pk=updated.pk, now=now)
    if not change.keep_pending_email:
        # A credential change settles the account: a code sent earlier no longer applies.
        await email_changes.remove(tx, updated.pk)
    # Any credential change makes an earlier password-reset link useless.
    await recovery_tokens.invalidate(tx, user_pk=updated.pk, purposes=(RESET,), now=now)
    revert = None
    if change.revertible and change.old_email and "email" in change.fields:
        revert = await _revert_link(ctx, tx, updated, change.old_email, now)
    await notices.credentials_changed(
        tx,
        updated,
        old_email=change.old_email,
        fields=list(change.fields),
        ip=ctx.ip,
        now=now,
        revert=revert,
        sealer=services.sealer,
        kind=change.notice,
    )
    tx.after_commit.append(services.delivery.kick)
    await change_log.user_changed(
        ctx,
        tx,
        user_pk=updated.pk,
        project_id=change.project_id or (await ctx.project()).id,
        action=change.action,
        fields=change.audit_fields if change.audit_fields is not None else change.fields,
        now=now,
        strategy=change.strategy,
        actor=change.actor,
    )
    ctx.forget_caller()


async def _revert_link(
    ctx: RequestContext, tx: Tx, user: User, old_email: str, now: int
) -> notices.OneTimeLink:
    """A "this wasn't me" token for the old address, stored as its digest only."""
    settings = ctx.services.settings
    token = new_token()
    expires_at = await add_token(
        ctx,
        tx,
        user,
        purpose=REVERT,
        token=token,
        email=old_email,
        ttl_seconds=settings.email_revert_ttl_seconds,
        now=now,
    )
    return notices.OneTimeLink(notices.link_for(settings.email_revert_url, token), expires_at)
