"""Account recovery: password reset, "this wasn't me" (revert an email change), and email
verification. Every token is single-use, 256 random bits, stored only as a keyed digest.

Changes of credentials go through the one credential-change step (sessions revoked, notice,
event, audit) like every other route.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.core.clock import now_ms
from api.core.errors import AmendError, Reason
from api.core.models import Actor, User
from api.core.policy import canonical_email, validate_password
from api.security.sealing import new_token
from api.services import change_log, notices
from api.services import credential_change as credential_change_step
from api.services.accounts import identifier_keys
from api.services.context import RequestContext
from api.services.credential_change import RESET, REVERT, VERIFY, CredentialChange
from api.services.credentials import CredentialsChange
from api.store import Tx, attempts, projects, recovery_tokens, users


def _invalid() -> AmendError:
    return AmendError(
        Reason.INVALID_CODE, "this link is not valid (unknown, expired or used)", field=("token",)
    )


def _limited(retry_after: int) -> AmendError:
    return AmendError(
        Reason.RATE_LIMITED, "too many requests; try again later", retry_after=retry_after
    )


async def _throttle(
    ctx: RequestContext, tx: Tx, *, purpose: str, endpoint_id: int, identifier: str, now: int
) -> None:
    """Requests for tokens of `purpose`: per identifier and per client IP, within the
    throttle window, with the limits of failed sign-ins."""
    settings = ctx.services.settings
    window = settings.throttle_window_seconds * 1000
    by_id, by_ip = await recovery_tokens.requests_since(
        tx,
        purpose=purpose,
        endpoint_id=endpoint_id,
        identifier=identifier,
        ip=ctx.ip,
        since=now - window,
    )
    if by_id >= settings.signin_max_failures or (
        ctx.ip is not None and by_ip >= settings.signin_max_failures_per_ip
    ):
        raise _limited(settings.throttle_window_seconds)


async def request_password_reset(ctx: RequestContext, *, endpoint: str, identifier: str) -> bool:
    """True for every well-formed request. The request does the same statements and the same
    work whether or not the account exists; the mail is queued after the answer is ready."""
    project = await ctx.api_key_project()
    ep = await ctx.endpoint(endpoint)
    if not identifier.strip() or len(identifier) > 254:
        raise AmendError(Reason.INVALID_FIELD, "give a username or an email", field=("identifier",))
    username_key, email_key = identifier_keys(identifier)
    key = email_key or username_key
    services = ctx.services
    token = new_token()
    digest = services.sealer.digest(RESET, token)
    now = now_ms()
    expires_at = now + services.settings.password_reset_ttl_seconds * 1000
    async with services.db.write() as tx:
        await attempts.lock(tx, f"reset:{ep.id}:{key}", f"reset-ip:{ctx.ip or ''}")
        await _throttle(ctx, tx, purpose=RESET, endpoint_id=ep.id, identifier=key, now=now)
        found = await users.by_identifier(tx, ep.id, username_key, email_key)
        user = found if found is not None and found.email else None
        # A newer request makes older links useless (for no one, when there is no user).
        await recovery_tokens.invalidate(
            tx, user_pk=user.pk if user else None, purposes=(RESET,), now=now
        )
        await recovery_tokens.add(
            tx,
            digest=digest,
            purpose=RESET,
            endpoint_id=ep.id,
            user_pk=user.pk if user else None,
            identifier=key,
            email=user.email if user else None,
            ip=ctx.ip,
            now=now,
            expires_at=expires_at,
        )
    if user is not None:
        link = notices.OneTimeLink(
            notices.link_for(services.settings.password_reset_url, token), expires_at
        )
        services.delivery.later(lambda: _queue_reset(ctx, user, project.name, link))
    return True


async def _queue_reset(
    ctx: RequestContext, user: User, project: str, link: notices.OneTimeLink
) -> None:
    assert user.email is not None
    async with ctx.services.db.write() as tx:
        await notices.link_mail(
            tx,
            user,
            "password_reset",
            to=user.email,
            project=project,
            link=link,
            now=now_ms(),
            sealer=ctx.services.sealer,
        )


@dataclass(frozen=True, slots=True)
class _Spent:
    user: User
    project_id: str
    email: str | None


async def _spend(ctx: RequestContext, tx: Tx, purpose: str, token: str, now: int) -> _Spent:
    """Inside the write transaction: the live token's user, the token now used."""
    found = await recovery_tokens.find(
        tx, digest=ctx.services.sealer.digest(purpose, token.strip()), purpose=purpose
    )
    if found is None or found.user_pk is None or found.used_at is not None:
        raise _invalid()
    if found.expires_at <= now or not await recovery_tokens.spend(tx, found.id, now=now):
        raise _invalid()
    user = await users.by_pk(tx, found.user_pk, for_update=True)
    if user is None:
        raise _invalid()
    return _Spent(user, found.project_id, found.email)


async def _check(ctx: RequestContext, purpose: str, token: str) -> User:
    """Read-only look at a token before spending a password hash on it."""
    async with ctx.services.db.read() as tx:
        found = await recovery_tokens.find(
            tx, digest=ctx.services.sealer.digest(purpose, token.strip()), purpose=purpose
        )
        if found is None or found.user_pk is None or found.used_at is not None:
            raise _invalid()
        if found.expires_at <= now_ms():
            raise _invalid()
        user = await users.by_pk(tx, found.user_pk)
    if user is None:
        raise _invalid()
    return user


async def reset_password(ctx: RequestContext, *, token: str, password: str) -> CredentialsChange:
    user = await _check(ctx, RESET, token)
    validate_password(password, username=user.username, email=user.email, field=("password",))
    new_hash = await ctx.services.hasher.hash(password)  # never inside a write transaction
    now = now_ms()
    async with ctx.services.db.write() as tx:
        spent = await _spend(ctx, tx, RESET, token, now)
        changes = {"password_hash": new_hash, "email_verified": True}
        change = CredentialChange(
            action="reset_password",
            fields=("password",),
            actor=Actor.USER,
            project_id=spent.project_id,
            notice="password_changed",
        )
        updated = await credential_change_step.store(ctx, tx, spent.user, changes, change, now=now)
    return CredentialsChange(user=updated, reauthentication_required=True)


async def revert_email_change(ctx: RequestContext, *, token: str) -> CredentialsChange:
    """Put the old address back (verified), sign everyone out, cancel a pending change, and
    mail a password-reset link to the restored address."""
    services = ctx.services
    now = now_ms()
    reset_token = new_token()
    async with services.db.write() as tx:
        spent = await _spend(ctx, tx, REVERT, token, now)
        assert spent.email is not None
        current = spent.user
        holder = await users.by_email(tx, current.endpoint_id, canonical_email(spent.email))
        if holder is not None and holder.pk != current.pk:
            raise AmendError(Reason.EMAIL_TAKEN, "another account now uses this email address")
        changes = credential_change_step.verified_email(spent.email)
        change = CredentialChange(
            action="revert_email_change",
            fields=("email",),
            actor=Actor.USER,
            project_id=spent.project_id,
            revertible=False,
        )
        updated = await credential_change_step.store(ctx, tx, current, changes, change, now=now)
        await _issue_reset(ctx, tx, updated, spent.project_id, reset_token, now)
    return CredentialsChange(user=updated, reauthentication_required=True)


async def _issue_reset(
    ctx: RequestContext, tx: Tx, user: User, project_id: str, token: str, now: int
) -> None:
    settings = ctx.services.settings
    assert user.email is not None
    expires_at = await credential_change_step.add_token(
        ctx,
        tx,
        user,
        purpose=RESET,
        token=token,
        email=user.email,
        ttl_seconds=settings.password_reset_ttl_seconds,
        now=now,
    )
    project = await projects.by_id(tx, project_id)
    link = notices.OneTimeLink(notices.link_for(settings.password_reset_url, token), expires_at)
    await notices.link_mail(
        tx,
        user,
        "password_reset",
        to=user.email,
        project=project.name if project else "your application",
        link=link,
        now=now,
        sealer=ctx.services.sealer,
    )


async def send_email_verification(ctx: RequestContext) -> bool:
    """Mail a verification link to the caller's address when it is not verified yet; True
    either way."""
    caller = await ctx.caller()
    user = caller.user
    services = ctx.services
    now = now_ms()
    async with services.db.write() as tx:
        key = f"user:{user.pk}"
        await attempts.lock(tx, f"verify:{key}")
        await _throttle(
            ctx, tx, purpose=VERIFY, endpoint_id=user.endpoint_id, identifier=key, now=now
        )
        if user.email is None or user.email_verified:
            return True
        token = new_token()
        await recovery_tokens.invalidate(tx, user_pk=user.pk, purposes=(VERIFY,), now=now)
        expires_at = await credential_change_step.add_token(
            ctx,
            tx,
            user,
            purpose=VERIFY,
            token=token,
            email=user.email,
            ttl_seconds=services.settings.email_revert_ttl_seconds,
            now=now,
            identifier=key,
        )
        link = notices.OneTimeLink(
            notices.link_for(services.settings.email_verify_url, token), expires_at
        )
        await notices.link_mail(
            tx,
            user,
            "email_verification",
            to=user.email,
            project=caller.project.name,
            link=link,
            now=now,
            sealer=services.sealer,
        )
        tx.after_commit.append(services.delivery.kick)
    return True


async def verify_email(ctx: RequestContext, *, token: str) -> CredentialsChange:
    """Mark the address verified when it is still the one the link was sent to. Not a
    credential change: no session is revoked."""
    now = now_ms()
    async with ctx.services.db.write() as tx:
        spent = await _spend(ctx, tx, VERIFY, token, now)
        user = spent.user
        if user.email is None or spent.email is None:
            raise _invalid()
        if canonical_email(user.email) != canonical_email(spent.email):
            raise _invalid()
        updated = user
        if not user.email_verified:
            written = await users.update_versioned(tx, user, {"email_verified": True})
            if written is None:  # pragma: no cover - the row is locked or the writer serialised
                raise AmendError(Reason.VERSION_CONFLICT, "the account changed; try again")
            updated = written
        await change_log.user_changed(
            ctx,
            tx,
            user_pk=user.pk,
            project_id=spent.project_id,
            action="verify_email",
            fields=("email_verified",),
            now=now,
        )
    ctx.forget_caller()
    return CredentialsChange(user=updated, reauthentication_required=False)
