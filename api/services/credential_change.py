"""The one step every credential change takes, whichever route made it.

A changed password or email address signs out every session, settles a pending email change,
queues the security notice, announces the change to watchers, writes the audit entry and makes
later resolvers of the same request read the caller afresh. Every route that changes
credentials (GraphQL, the REST shims, recovery) calls `committed` inside its write
transaction, so none of these can be forgotten by one route.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.core.models import Actor, User
from api.services import notices
from api.services.context import RequestContext
from api.store import Tx, audit, email_changes, sessions


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
    await notices.credentials_changed(
        tx, updated, old_email=change.old_email, fields=list(change.fields), ip=ctx.ip, now=now
    )
    tx.after_commit.append(services.delivery.kick)
    await services.events.changed(tx, updated.pk)
    project = await ctx.project()
    fields = change.audit_fields if change.audit_fields is not None else change.fields
    await audit.record(
        tx,
        project_id=project.id,
        user_pk=updated.pk,
        action=change.action,
        fields=list(fields),
        strategy=change.strategy,
        actor=change.actor,
        ip=ctx.ip,
        now=now,
    )
    ctx.forget_caller()
