"""Credential changes (email, password): proof of presence, policy, revocation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace

from api.core.clock import now_ms
from api.core.errors import AmendError, Problem, Reason
from api.core.models import PLAN_RANK, Actor, Plan, User
from api.core.policy import (
    canonical_email,
    normalize_email,
    validate_password,
)
from api.services import credential_change as credential_change_step
from api.services import notices
from api.services.context import AuthenticatedCaller, RequestContext
from api.services.credential_change import CredentialChange
from api.services.presence import check_password
from api.services.ratelimit import check_credential_changes
from api.store import Tx, audit, email_changes, users


@dataclass(frozen=True, slots=True)
class CredentialsChange:
    user: User
    reauthentication_required: bool
    pending_email: str | None = None


def require_recent_signin(
    ctx: RequestContext, signed_in_at: int, now: int, *, field: tuple[str, ...]
) -> None:
    window = ctx.services.settings.reauth_window_seconds * 1000
    if signed_in_at < now - window:
        raise AmendError(
            Reason.REAUTHENTICATION_REQUIRED,
            "confirm your current password or sign in again to change credentials",
            field=field,
        )


async def update_credentials(
    ctx: RequestContext,
    *,
    email: str | None,
    password: str | None,
    current_password: str | None,
    verifiable: bool = False,
) -> CredentialsChange:
    """Change email and/or password. `verifiable`: this route may hold an email change for
    its code when AMEND_EMAIL_CHANGE=verify (GraphQL); the credentials REST API may not."""
    caller = await ctx.caller()
    if PLAN_RANK[caller.project.plan] < PLAN_RANK[Plan.PERSONAL]:
        raise AmendError(Reason.PLAN_REQUIRED, "this API needs the personal plan or above")
    user = caller.user
    services = ctx.services
    new_email = _validate_request(user, email, password)
    now = now_ms()
    async with services.db.read() as tx:
        await check_credential_changes(tx, services.settings, user_pk=user.pk, now=now)
    stored_hash = await _prove_presence(ctx, caller, current_password, now)
    # A hash upgraded by the password check is the one the write below must find.
    user = replace(user, password_hash=stored_hash)
    new_hash = None if password is None else await _new_password_hash(ctx, user, password)
    # With AMEND_EMAIL_CHANGE=verify (GraphQL only), the new address waits for its code.
    pending_email = (
        new_email
        if new_email is not None and verifiable and services.settings.email_change == "verify"
        else None
    )
    changes: dict[str, object] = {}
    if new_email is not None and pending_email is None:
        changes.update(email=new_email, email_canonical=canonical_email(new_email))
        changes["email_verified"] = False
    if new_hash is not None:
        changes["password_hash"] = new_hash
    return await _write_credentials(ctx, user, changes, pending_email)


def _validate_request(user: User, email: str | None, password: str | None) -> str | None:
    """Every problem of the request at once; the new address when the email changes."""
    problems: list[Problem] = []
    new_email: str | None = None
    if email is not None:
        try:
            normalized = normalize_email(email, field=("email",))
        except AmendError as error:
            problems.extend(error.problems)
        else:
            if user.email is None or canonical_email(normalized) != canonical_email(user.email):
                new_email = normalized
    if password is not None:
        try:
            validate_password(
                password, username=user.username, email=new_email or user.email, field=("password",)
            )
        except AmendError as error:
            problems.extend(error.problems)
    if problems:
        raise AmendError.of(problems)
    if new_email is None and password is None:
        raise AmendError(Reason.EMPTY_UPDATE, "give a new email address or a new password")
    return new_email


async def _prove_presence(
    ctx: RequestContext, caller: AuthenticatedCaller, current_password: str | None, now: int
) -> str:
    """The current password (counted like a sign-in attempt), or a recent sign-in; the
    stored hash afterwards (an imported or outdated one is upgraded by the check)."""
    if current_password is None:
        require_recent_signin(ctx, caller.session.created_at, now, field=("current_password",))
        return caller.user.password_hash
    stored = await check_password(ctx, caller.user, current_password)
    if stored is None:
        raise AmendError(
            Reason.REAUTHENTICATION_REQUIRED,
            "the current password is not correct",
            field=("current_password",),
        )
    return stored


async def _new_password_hash(ctx: RequestContext, user: User, password: str) -> str:
    hasher = ctx.services.hasher
    if (await hasher.verify(password, user.password_hash)).ok:
        raise AmendError(
            Reason.PASSWORD_POLICY,
            "the new password must differ from the current one",
            field=("password",),
        )
    return await hasher.hash(password)


async def _write_credentials(
    ctx: RequestContext, user: User, changes: dict[str, object], pending_email: str | None
) -> CredentialsChange:
    now = now_ms()
    async with ctx.services.db.write() as tx:
        current = await users.by_pk(tx, user.pk, for_update=True)
        # Again under the row lock: parallel requests all passed the check before hashing.
        await check_credential_changes(tx, ctx.services.settings, user_pk=user.pk, now=now)
        # Checked against the hash verified above: a credential change that happened in
        # between revoked this session, so this one must not go through.
        if (
            current is None
            or current.password_hash != user.password_hash
            or ((current.email or "") != (user.email or ""))
        ):
            raise AmendError(
                Reason.REAUTHENTICATION_REQUIRED,
                "the credentials changed meanwhile; sign in again",
                field=("current_password",),
            )
        if pending_email is not None:
            await _start_email_change(ctx, tx, current, pending_email, now)
            if not changes:
                return CredentialsChange(
                    user=current, reauthentication_required=False, pending_email=pending_email
                )
        fields = tuple(
            name for name in ("email", "password") if name in changes or f"{name}_hash" in changes
        )
        change = CredentialChange(
            action="update_credentials",
            fields=fields,
            actor=Actor.USER,
            old_email=user.email if "email" in changes else None,
            keep_pending_email=pending_email is not None,
        )
        updated = await credential_change_step.store(ctx, tx, current, changes, change, now=now)
    return CredentialsChange(
        user=updated, reauthentication_required=True, pending_email=pending_email
    )


CODE_TTL_MS = 15 * 60 * 1000
CODE_TRIES = 5


def _code_digest(ctx: RequestContext, user_pk: int, code: str) -> str:
    # Keyed: a leaked table of digests cannot be reversed by trying the million codes.
    key = ctx.services.settings.secret_key.encode()
    return hmac.new(key, f"{user_pk}:{code}".encode(), hashlib.sha256).hexdigest()


async def _start_email_change(
    ctx: RequestContext, tx: Tx, user: User, new_email: str, now: int
) -> None:
    taken = await users.by_email(tx, user.endpoint_id, canonical_email(new_email))
    if taken is not None and taken.pk != user.pk:
        raise AmendError(Reason.EMAIL_TAKEN, "this email address is already used", field=("email",))
    code = f"{secrets.randbelow(1_000_000):06d}"
    await email_changes.replace(
        tx,
        user_pk=user.pk,
        new_email=new_email,
        code_digest=_code_digest(ctx, user.pk, code),
        now=now,
        expires_at=now + CODE_TTL_MS,
    )
    await notices.email_change_code(
        tx, user, to=new_email, code=code, now=now, sealer=ctx.services.sealer
    )
    tx.after_commit.append(ctx.services.delivery.kick)
    await audit.record(
        tx,
        project_id=(await ctx.project()).id,
        user_pk=user.pk,
        action="update_credentials",
        fields=["pending_email"],
        strategy=None,
        actor=Actor.USER,
        ip=ctx.ip,
        now=now,
    )


async def confirm_email_change(ctx: RequestContext, code: str) -> CredentialsChange:
    """Apply the pending email change whose code this is; revokes every session."""
    caller = await ctx.caller()
    services = ctx.services
    now = now_ms()
    failure: AmendError
    async with services.db.write() as tx:
        pending = await email_changes.get(tx, caller.user.pk)
        if pending is None or pending.expires_at <= now or pending.tries >= CODE_TRIES:
            if pending is not None:
                await email_changes.remove(tx, caller.user.pk)
            failure = AmendError(
                Reason.INVALID_CODE, "no email change is waiting for a code", field=("code",)
            )
        elif not hmac.compare_digest(
            _code_digest(ctx, caller.user.pk, code.strip()), pending.code_digest
        ):
            await email_changes.count_try(tx, caller.user.pk)
            failure = AmendError(Reason.INVALID_CODE, "the code is not correct", field=("code",))
        else:
            return await _apply_email(ctx, tx, caller.user.pk, pending.new_email, now)
    # Raised after the transaction so the spent try (or the expired change) stays recorded.
    raise failure


async def _apply_email(
    ctx: RequestContext, tx: Tx, user_pk: int, new_email: str, now: int
) -> CredentialsChange:
    current = await users.by_pk(tx, user_pk, for_update=True)
    if current is None:
        raise AmendError(Reason.USER_NOT_FOUND, "no user found for this token")
    changes = credential_change_step.verified_email(new_email)
    change = CredentialChange(
        action="confirm_email_change",
        fields=("email",),
        actor=Actor.USER,
        old_email=current.email,
    )
    updated = await credential_change_step.store(ctx, tx, current, changes, change, now=now)
    return CredentialsChange(user=updated, reauthentication_required=True)
